"""Step 2 (latent offsets through the mapping tail) and optimisation-based projection, on the
bundled SynFace GAN."""
import pytest
import torch

from g2s_lite.invert import LatentOffsetEncoder, add_offset, generate, offset_start, project, step2
from g2s_lite.paper import PSEUDO_VIEWS, ProjectConfig, Step2Config
from g2s_lite.prior import make_prior
from g2s_lite.pseudo import sample_pseudo
from g2s_lite.render import Renderer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sample(gan):
    """A GAN sample with a known w, used as the image (factors: the image itself as albedo,
    ambient light only, so Φ at the identity view reproduces it)."""
    G, _ = gan
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(3)))
        image = generate(G, w)
    return w, image


def test_offset_enters_before_the_last_f1_d_layers(gan):
    G, _ = gan
    assert offset_start(G, 8) == 1 and offset_start(G, G.n_mlp) == 1  # all layers, no pixel norm
    assert offset_start(G, 2) == len(G.style) - 2
    with pytest.raises(ValueError, match="f1_d"):
        offset_start(G, 0)
    z = torch.randn(3, G.style_dim)
    k = offset_start(G, 2)
    assert torch.allclose(G.mapping(G.mapping(z, 0, k), k), G.mapping(z), atol=1e-5)


def test_relative_offsets_vanish_for_the_image_and_start_small(gan, sample):
    G, _ = gan
    w, image = sample
    encoder = LatentOffsetEncoder(G, f1_d=8, nf=16)
    r = Renderer(64)
    depth = make_prior("ellipsoid", 64)[None]
    pseudo, _, _, _ = sample_pseudo(r, depth, image, torch.tensor([[1.0, 0.0, 0.0, 0.0]]), 8,
                                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        same = encoder(image.expand(4, -1, -1, -1), image, G)
        assert same.abs().max() < 1e-6  # exactly zero up to batched-convolution round-off
        relative = encoder(pseudo, image, G).norm(dim=1)
        absolute = LatentOffsetEncoder(G, f1_d=8, nf=16, relative=False)
        absolute.load_state_dict(encoder.state_dict())
        plain = absolute(pseudo, image, G).norm(dim=1)
    # E(Ĩ) − E(I) is much smaller than E(Ĩ) when Ĩ is a turned and relit I
    assert (relative < 0.5 * plain).all()
    assert add_offset(w, torch.zeros(5, G.style_dim)).shape == (5, G.style_dim)
    assert add_offset(w[:, None].expand(1, G.n_latent, -1), torch.zeros(5, G.style_dim)).shape \
        == (5, G.n_latent, G.style_dim)


def test_projection_recovers_a_sample_with_known_w(gan, sample):
    G, D = gan
    w_true, target = sample
    start = generate(G, G.w_avg)
    w, recon = project(target, G, D, ProjectConfig(steps=60), progress=False)
    assert w.shape == (1, G.style_dim) and recon.shape == target.shape
    error, start_error = (recon - target).abs().mean(), (start - target).abs().mean()
    assert error <= 0.3 * start_error
    # closer to the true w than the mean is
    assert (w - w_true).norm() < (G.w_avg - w_true).norm()
    assert all(p.requires_grad for p in G.parameters())  # the GAN is left as it was


def test_projection_refuses_bad_images(gan):
    G, D = gan
    with pytest.raises(ValueError, match="B×3×H×W"):
        project(torch.zeros(1, 1, 64, 64), G, D, ProjectConfig(steps=1), progress=False)
    with pytest.raises(ValueError, match=r"\[−1, 1\]"):
        project(torch.full((1, 3, 64, 64), 5.0), G, D, ProjectConfig(steps=1), progress=False)


def test_step2_lowers_its_loss_and_collects_samples(gan, sample):
    G, D = gan
    w, image = sample
    depth = make_prior("ellipsoid", 64)[None]
    light = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    config = Step2Config(steps=40, batch=4, lr=1e-3, nf=16, collect=3)
    result = step2(image, w, G, D, depth, image, light, config, progress=False)
    first = sum(h["loss"] for h in result.history[:5]) / 5
    last = sum(h["loss"] for h in result.history[-5:]) / 5
    assert last < 0.9 * first
    assert result.history[0]["offset"] < 0.1 * max(h["offset"] for h in result.history) + 1e-6
    n = config.batch * config.collect
    assert result.projected.shape == result.pseudo.shape == (n, 3, 64, 64)
    assert result.masks.shape == (n, 1, 64, 64) and result.offsets.shape == (n, G.style_dim)
    assert result.projected.abs().max() <= 1
    assert set(result.masks.unique().tolist()) <= {0.0, 1.0}
    limit = torch.tensor(PSEUDO_VIEWS.yaw).deg2rad()
    assert (result.views[:, 1].abs() <= limit + 1e-6).all()
    # the projected samples follow the pseudo samples better than the image itself does
    m = result.masks
    err = lambda a: ((a - result.pseudo).abs() * m).sum() / (3 * m.sum())  # noqa: E731
    assert err(result.projected) < err(image.expand_as(result.pseudo))


def test_a_framed_gan_frames_what_projection_returns(gan, sample):
    """FramedGAN carries the preset's crop: project's reconstruction is the centre of G's
    image of the w it found, and FramedGAN.generate is generate with its crop."""
    from g2s_lite.images import centre_fraction, to_size
    from g2s_lite.invert import FramedGAN

    G, D = gan
    _, image = sample
    half = FramedGAN(G, 0.5)
    w, recon = project(image, half, D, ProjectConfig(steps=1), progress=False)
    with torch.no_grad():
        whole = G.synthesis(w, noise_mode="const").clamp(-1, 1)
        assert torch.equal(half.generate(w, 64), generate(G, w, 64, 0.5))
    assert torch.allclose(recon, to_size(centre_fraction(whole, 0.5), 64), atol=1e-6)
    assert not torch.allclose(recon, to_size(whole, 64), atol=0.05)


def test_step2_feeds_the_discriminator_the_samples_at_their_own_size():
    """As the official code does (gan2shape/model.py forward_step2: the projected image is
    resized to image_size, 64 px for synthetic faces, and given with the pseudo sample to
    its 128/256-px discriminator unchanged): D's blocks see 64 px and give 32, 16, 8 and 4-px
    feature maps, not the 128, 64, 32, 16 px of the samples upsampled to D's size."""
    import torch.nn.functional as F

    from g2s_lite.gan import Discriminator
    from g2s_lite.images import to_size
    from g2s_lite.invert import step2_loss

    torch.manual_seed(0)
    D = Discriminator(256, {2 ** i: 8 for i in range(2, 9)})
    projected, pseudo = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    masks = (torch.rand(2, 1, 64, 64) > 0.3).float()
    config = Step2Config()
    sizes = []
    features = D.features
    D.features = lambda x, n: sizes.append(x.shape[-1]) or features(x, n)
    with torch.no_grad():
        feature = step2_loss(projected, pseudo, masks, torch.zeros(2, 8), D, config)["feature"]

    def by_hand(size):  # the official DiscriminatorLoss on D's first blocks, run one by one
        fake, real, total = to_size(projected, size), to_size(pseudo, size), 0
        mask = to_size(masks, size)
        fake, real = D.convs[0](fake), D.convs[0](real)
        for block in D.convs[1:config.d_blocks + 1]:
            fake, real = block(fake), block(real)
            pooled = F.avg_pool2d(mask, size // fake.shape[-1]).expand_as(fake)
            total = total + ((fake - real).abs() * pooled).sum() / pooled.sum()
        return total, fake.shape[-1]

    with torch.no_grad():
        own, last = by_hand(64)
        upsampled, last_up = by_hand(256)
    assert sizes == [64, 64] and (last, last_up) == (4, 16)
    assert torch.allclose(feature, own[None], rtol=1e-5)
    assert not torch.allclose(feature, upsampled[None], rtol=1e-2)
