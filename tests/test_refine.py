"""Step 1 on a SynFace: it lowers the photometric loss clearly, reproducibly; bad images are
refused with clear messages."""
import pytest
import torch

from g2s_lite.losses import PerceptualLoss
from g2s_lite.prior import box_from_mask, make_prior
from g2s_lite.images import check_image
from g2s_lite.paper import Step1Config
from g2s_lite.refine import step1
from g2s_lite.synth import SynFaces


@pytest.fixture(scope="module")
def face():
    return SynFaces(64).sample(1, seed=11)


def test_step1_lowers_the_photometric_loss_by_a_clear_factor(face):
    prior = make_prior("ellipsoid", 64, box=box_from_mask(face["mask"][0]))
    config = Step1Config(steps=50, lr=1e-3, nf=16)
    result = step1(face["image"], prior, config, PerceptualLoss("ssim"), progress=False)
    first, last = result.history[0]["l1"], result.history[-1]["l1"]
    assert last < first / 3
    assert result.reconstruction.shape == (1, 3, 64, 64)
    assert torch.equal(result.view, torch.zeros(1, 6))
    assert torch.equal(result.depth[0], prior)  # D held at the prior
    # reproducible for a seed, and the global random state is left alone
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    again = step1(face["image"], prior, Step1Config(steps=3, lr=1e-3, nf=16),
                  PerceptualLoss("ssim"), progress=False)
    assert torch.rand(1) == before
    once = step1(face["image"], prior, Step1Config(steps=3, lr=1e-3, nf=16),
                 PerceptualLoss("ssim"), progress=False)
    assert torch.allclose(again.albedo, once.albedo)


@pytest.mark.parametrize("image, message", [
    (torch.zeros(1, 64, 64), "3 colour channels"),
    (torch.zeros(1, 4, 64, 64), "3 colour channels"),
    (torch.zeros(2, 3, 64, 64), "1×3×H×W"),
    (torch.full((3, 64, 64), 2.0), "x·2 − 1"),
])
def test_bad_images_are_refused_clearly(image, message):
    with pytest.raises(ValueError, match=message):
        check_image(image)
    with pytest.raises(ValueError, match="resize"):
        check_image(torch.zeros(3, 32, 32), size=64)


# ----------------------------------------------------------------------------- step 3
from g2s_lite.metrics import depth_errors  # noqa: E402
from g2s_lite.pseudo import sample_lights, sample_views  # noqa: E402
from g2s_lite.nets import Nets  # noqa: E402
from g2s_lite.paper import Step3Config  # noqa: E402
from g2s_lite.refine import _explain, _renders, step3  # noqa: E402
from g2s_lite.render import Renderer  # noqa: E402
from g2s_lite.synth import render_turned  # noqa: E402


def test_depth_net_starts_exactly_at_the_prior(face):
    prior = make_prior("ellipsoid", 64)
    nets = Nets.create(64, 16)
    nets.depth.start_at(prior)
    depth = nets.depth(torch.cat([face["image"], -face["image"]]))
    # everywhere, the border too: it is held where the prior has it, not at a fixed depth
    assert torch.allclose(depth, prior[None].expand(2, 64, 64), atol=1e-5)
    # a prior whose border is not the default 1.04 (a shifted ellipsoid) is met there too
    moved = Nets.create(64, 16).depth.start_at(prior + 0.05)
    assert torch.allclose(moved(face["image"])[0, :2], prior[:2] + 0.05, atol=1e-5)


def test_the_mirror_term_vanishes_for_a_symmetric_object():
    r, perc = Renderer(32), PerceptualLoss("ssim")
    depth = make_prior("ellipsoid", 32)[None]
    albedo = torch.rand(1, 3, 32, 32) * 2 - 1
    albedo = (albedo + albedo.flip(-1)) / 2  # symmetric
    view = torch.tensor([[0.1, 0.3, 0.0, 0.0, 0.0, 0.0]])
    light = torch.tensor([[0.4, 0.6, 0.0, 0.3]])  # a light from straight above: symmetric
    target, _ = r.render(depth, albedo, light, view)
    target = target + 0.05 * torch.randn_like(target)

    def explain(albedo, flip):
        return _explain(*_renders(r, depth, albedo, view, light, None, flip), target, perc, 0.5)[0]

    one, both = explain(albedo, False), explain(albedo, True)
    assert torch.allclose(both, 2 * one, rtol=1e-4)
    skew = albedo.clone()
    skew[..., :16] = 1.0  # no longer symmetric: the mirror explains the image worse
    assert explain(skew, True) > 2 * explain(skew, False)


def test_step3_on_true_views_lowers_its_loss(face):
    """With ground-truth renderings of the face as the 'projected samples', step 3 fits them."""
    image = face["image"]
    nets = Nets.create(64, 16, prior=make_prior("ellipsoid", 64))
    g = torch.Generator().manual_seed(0)
    views, lights = sample_views(32, generator=g), sample_lights(32, (0.45, 0.3), generator=g)
    samples, masks = render_turned(face, views, lights)
    history = step3(image, samples, masks, nets, Step3Config(steps=30, batch=8, lr=1e-3),
                    PerceptualLoss("ssim"), progress=False)
    first = sum(h["loss"] for h in history[:5]) / 5
    last = sum(h["loss"] for h in history[-5:]) / 5
    assert last < 0.8 * first


def test_step3_view_lr_drives_the_view_net_alone(face):
    """``view_lr`` is V's own learning rate: at 0, V stays as it was while D still learns."""
    image = face["image"]
    nets = Nets.create(64, 16)
    g = torch.Generator().manual_seed(0)
    views, lights = sample_views(4, generator=g), sample_lights(4, (0.45, 0.3), generator=g)
    samples, masks = render_turned(face, views, lights)
    v0 = [q.detach().clone() for q in nets.view.parameters()]
    d0 = [q.detach().clone() for q in nets.depth.parameters()]
    step3(image, samples, masks, nets, Step3Config(steps=2, batch=4, view_lr=0.0),
          PerceptualLoss("ssim"), progress=False)
    assert all(q.equal(q0) for q, q0 in zip(nets.view.parameters(), v0))
    assert not all(q.equal(q0) for q, q0 in zip(nets.depth.parameters(), d0))


def test_step3_with_true_views_recovers_depth_better_than_the_prior():
    """Step 3's geometry, apart from the GAN: when the projected samples are what a perfect
    GAN would draw (true renderings of the face, turned and relit), one short quick-mode-sized
    run of step 1 and step 3 beats the ellipsoid it starts from on both SIDE and MAD, in the
    image's own view. (With our GAN's projected samples it does not yet: they barely turn —
    see Chapter 7.)"""
    faces = SynFaces(64).sample(3, seed=555)  # tuning faces, never the benchmark's
    i, r, perc = 2, Renderer(64), PerceptualLoss("ssim")
    image, prior = faces["image"][i:i + 1], make_prior("ellipsoid", 64)
    nets = Nets.create(64, 16, prior=prior)
    s1 = step1(image, prior, Step1Config(steps=50, nf=16), perc, progress=False,
               albedo_net=nets.albedo, light_net=nets.light)
    g = torch.Generator().manual_seed(0)
    views = sample_views(64, generator=g)
    lights = sample_lights(64, s1.light[0, :2].detach(), generator=g)
    samples, masks = render_turned(faces, views, lights, index=i)
    step3(image, samples, masks, nets, Step3Config(steps=40, batch=8, lr=1e-3), perc,
          progress=False)
    with torch.no_grad():
        depth = r.warp_depth(nets.depth(image), nets.view(image))
    truth = (faces["depth"][i:i + 1], faces["mask"][i:i + 1], r)
    after = depth_errors(depth, *truth, pred_valid=(depth < r.valid_max_depth).float()[:, None])
    before = depth_errors(prior[None], *truth)
    assert after["side"] < 0.85 * before["side"] and after["mad"] < 0.75 * before["mad"]
