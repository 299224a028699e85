"""Chapter 8's edits: the identity edits give the reconstruction back, a light written in
the image's frame lights the same side of the picture, the GAN route runs, exported meshes
load back, and bad input is refused with a message."""
import math

import numpy as np
import pytest
import torch

from g2s_lite import edit
from g2s_lite.render import Renderer, make_view


@pytest.fixture(scope="module")
def rec(gan, one_thread):
    """A reconstruction of one SynFace with a few steps of each step (plumbing, not quality)."""
    from conftest import tiny_preset
    from g2s_lite.method import reconstruct
    from g2s_lite.synth import SynFaces

    G, D = gan
    image = SynFaces(64).sample(1, seed=3)["image"]
    return reconstruct(image, G, D, preset=tiny_preset(), progress=False)


def test_no_edit_gives_the_reconstruction_back(rec):
    assert torch.equal(edit.rotate(rec), rec.reconstruction)
    assert torch.equal(edit.relight(rec, rec.light, frame="canonical"), rec.reconstruction)
    # the own light written in the image's frame, taken back to the canonical frame
    assert torch.allclose(edit.relight(rec, edit.image_light(rec)), rec.reconstruction,
                          atol=1e-5)


def test_rotation_in_the_views_frame_adds_to_its_angles(rec):
    """Turning by 20° in the view's frame equals Φ at the view with 20° more yaw."""
    r = Renderer(64)
    view = rec.view.clone()
    view[:, 1] += math.radians(20)
    view[:, 0] -= math.radians(10)
    expected, _ = r.render(rec.depth_canon, rec.albedo, rec.light, view)
    assert torch.allclose(edit.rotate(rec, 20, -10, frame="view"), expected)
    assert not torch.allclose(edit.rotate(rec, 20), rec.reconstruction, atol=1e-2)


def test_rotation_in_the_images_frame_turns_the_seen_points_about_the_camera_axes():
    """Every point the edited view places is the point the old view placed, turned by
    Ry(yaw)·Rx(pitch) about the rotation centre (a view with pitch, yaw, roll and a shift)."""
    r = Renderer(16)
    view = torch.tensor([[0.2, -0.4, 0.15, 0.01, -0.02, 0.0]])
    points = r.points(torch.full((1, 16, 16), 0.95))
    turn = edit.rotation_matrix(torch.tensor([[math.radians(-10.0), math.radians(25.0), 0.0]]))
    centre = torch.tensor([0.0, 0.0, r.rot_center_depth])
    expected = (r.transform(points, view) - centre) @ turn[0].T + centre
    assert torch.allclose(r.transform(points, edit.edit_view(view, 25.0, -10.0)), expected,
                          atol=1e-5)


def test_relight_keeps_the_reconstructions_strengths(rec):
    light = torch.tensor([[0.9, 0.05, -0.5, 0.2]])
    lit = edit.edit_light(rec, light, frame="canonical")
    assert torch.equal(lit[:, :2], rec.light[:, :2]) and torch.equal(lit[:, 2:], light[:, 2:])


def test_image_frame_light_lights_the_same_side_of_the_picture():
    """A wall facing the camera, seen turned by 30°: a light from the image's left must give
    the turned wall the brightness a frontal wall turned by nothing would get from the same
    light turned with it (analytic: the cosine between the wall's normal and the light)."""
    view = make_view(yaw=30.0)
    light = torch.tensor([[0.0, 1.0, -0.4, 0.1]])
    canon = edit.canonical_light(light, view)
    r = Renderer(8)
    normal_cam = torch.tensor([-math.sin(math.radians(30)), 0.0, -math.cos(math.radians(30))])
    travel = torch.nn.functional.normalize(torch.tensor([-0.4, 0.1, 1.0]), dim=0)
    expected = max(0.0, -(normal_cam @ travel).item())
    shading = r.shading(r.normals(torch.ones(1, 8, 8)), canon)
    assert torch.allclose(shading, torch.full_like(shading, expected), atol=1e-4)


def test_grids_and_gan_route_shapes(rec, gan):
    G, _ = gan
    grid = edit.pitch_yaw_grid(rec, yaws=(-20, 0, 20), pitches=(-10, 10))
    assert grid.shape == (2, 3, 3, 64, 64)
    assert torch.equal(grid[1, 0], edit.rotate(rec, -20, 10)[0])
    frames = edit.yaw_frames(rec, 3, route="gan", G=G)
    assert frames.shape == (3, 3, 64, 64) and frames.abs().max() <= 1
    lit = edit.relight_strip(rec, 4, route="gan", G=G)
    assert lit.shape == (4, 3, 64, 64) and torch.isfinite(lit).all()


def test_bad_input_is_refused(rec, gan):
    G, _ = gan
    with pytest.raises(ValueError, match="beyond"):
        edit.rotate(rec, yaw=75)
    with pytest.raises(ValueError, match="beyond"):
        edit.rotate(rec, pitch=-61)
    with pytest.raises(ValueError, match="B×4"):
        edit.relight(rec, torch.tensor([0.5, 0.5, 0.1, 0.1]))
    with pytest.raises(ValueError, match="generator"):
        edit.rotate(rec, 10, route="gan")
    from dataclasses import replace
    with pytest.raises(ValueError, match="encoder"):
        edit.rotate(replace(rec, encoder=None), 10, route="gan", G=G)
    with pytest.raises(ValueError, match="route"):
        edit.rotate(rec, 10, route="nerf")


def test_exported_meshes_load_back(rec, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    from g2s_lite.export import save_edits

    paths = save_edits(rec, tmp_path, frames=3)
    obj = trimesh.load(paths["textured"], process=False)
    assert obj.vertices.shape == (64 * 64, 3) and obj.faces.shape == (2 * 63 * 63, 3)
    assert obj.visual.material.image.size == (64, 64)
    # the texture is the albedo, pixel for pixel
    texture = np.asarray(obj.visual.material.image.convert("RGB"), dtype=np.float32) / 255
    albedo = ((rec.albedo[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(texture - albedo).max() <= 1 / 255 + 1e-6
    scene = trimesh.load(paths["glb"])
    (mesh,) = scene.geometry.values()
    assert mesh.vertices.shape == (64 * 64, 3)
    assert mesh.visual.material.baseColorTexture.size == (64, 64)
    # the mesh's points are the renderer's (up to the flip of y and z)
    points = Renderer(64).points(rec.depth_canon)[0].reshape(-1, 3) * torch.tensor([1., -1, -1])
    assert np.allclose(obj.vertices, points.numpy(), atol=1e-5)
    assert {"grid", "relight", "gif_mesh"} <= set(paths) and "gif_gan" not in paths


def test_cli_writes_the_edits(tmp_path, monkeypatch):
    from PIL import Image

    from conftest import tiny_preset
    from g2s_lite import paper
    from g2s_lite.__main__ import main
    from g2s_lite.synth import SynFaces
    from g2s_lite.viz import to_image, to_uint8

    monkeypatch.setitem(paper.PRESETS, "synface64", tiny_preset())
    face = SynFaces(64).sample(1, seed=5)["image"]
    Image.fromarray(to_uint8(to_image(face))).save(tmp_path / "face.png")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "face.png"), "--out", str(out), "--quick",
                 "--no-progress", "--edits"]) == 0
    names = {p.name for p in out.iterdir()} | {p.name for p in (out / "textured").iterdir()}
    assert names >= {"mesh.glb", "grid.png", "relight.png", "rotation_mesh.gif",
                     "rotation_gan.gif", "mesh.obj", "mesh.mtl", "albedo.png"}


def test_latent_directions_move_what_they_were_fitted_on():
    """On a linear world (targets exactly A·w + c) the step changes one target by the asked
    amount and holds the others."""
    torch.manual_seed(0)
    A = torch.randn(4, 16)
    d = edit.LatentDirections(A, torch.zeros(4), torch.zeros(16), reader=None)
    w = torch.randn(1, 16)
    change = torch.tensor([[30.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.2, -0.1]])
    moved = d.edit(w, change)
    assert torch.allclose((moved - w) @ A.T, change, atol=1e-4)


def test_identity_distance_is_zero_on_the_readers_own_reading():
    from g2s_lite.pose_regressor import PoseLightRegressor

    reader = PoseLightRegressor(outputs=5).eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.ones(2, 1, 64, 64)
    with torch.no_grad():
        read = reader(images)
    assert torch.allclose(edit.identity_distance(reader, images, mask, read),
                          torch.zeros(2), atol=1e-5)
    assert (edit.identity_distance(reader, images, mask, read + reader.target_std) > 0.99).all()


def test_chapter_8_checks_tell_right_from_wrong(rec, tmp_path):
    import json

    from g2s_lite.exercises import ch08, check
    from g2s_lite.render import Renderer

    a, b = rec.light[0, :2].tolist()
    assert check("8.1", (a / ch08.ALBEDO_SCALE, b / ch08.ALBEDO_SCALE), rec=rec)
    assert not check("8.1", (a, b), rec=rec)
    # 8.2 against the package's own conversion (the check works it out by hand)
    light = torch.tensor([[0.5, 0.5, *ch08.LIGHT_82]])
    dx, dy = edit.canonical_light(light, make_view(yaw=ch08.YAW_82))[0, 2:].tolist()
    assert check("8.2", (dx, dy)) and not check("8.2", ch08.LIGHT_82)
    r = Renderer(64)
    covered = r.valid_mask(r.warp_depth(rec.depth_canon, edit.edit_view(rec.view, 45.0)))
    assert check("8.3", 1 - covered.mean().item(), rec=rec)
    assert not check("8.3", 0.5 + 1 - covered.mean().item(), rec=rec)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"summary": {"yaw±30": {"input": {"l1": 0.1}, "gan": {"l1": 0.05},
                                                       "n": 3}}}))
    assert check("8.4", "gan", results=path) and not check("8.4", "input", results=path)


def test_an_oracle_reconstruction_scores_zero_on_the_mesh_route(gan):
    """Measured against the truth, a 'reconstruction' made of the world's own factors must
    give the true edited face on the mesh route (up to the rim), lit from the image's frame;
    taking the direction as canonical instead must miss on a turned face."""
    from types import SimpleNamespace

    from g2s_lite.benchmark import BENCHMARK_SEED
    from g2s_lite.pose_regressor import PoseLightRegressor
    from g2s_lite.invert import make_encoder
    from g2s_lite.paper import Step2Config
    from g2s_lite.prior import starting_prior
    from g2s_lite.paper import get_preset
    from g2s_lite.synth import SynFaces, face_params

    G, _ = gan
    faces = SynFaces(64).sample(2, seed=BENCHMARK_SEED)
    i = 0  # turned by 13° of yaw and pitch
    one = slice(i, i + 1)
    oracle = SimpleNamespace(
        image=faces["image"][one], reconstruction=faces["image"][one],
        depth_canon=faces["depth_canon"][one], albedo=faces["albedo"][one],
        view=faces["view"][one], light=faces["light"][one], w=G.w_avg.reshape(1, -1),
        encoder=make_encoder(G, Step2Config(), 64))
    reader = PoseLightRegressor(outputs=len(edit.identity_vector(face_params(0, 0)))).eval()
    directions = edit.LatentDirections(torch.randn(4, G.style_dim) * 0.01, torch.zeros(4),
                                       G.w_avg.reshape(-1), PoseLightRegressor().eval())
    out = edit.edits_of_face(oracle, faces, i, G, reader, directions,
                             starting_prior(get_preset("synface64")),
                             edit.identity_vector(face_params(BENCHMARK_SEED, i)))
    for name in ("yaw-30", "yaw+45", "pitch+15"):
        assert out[name]["mesh"]["l1"] < 0.02, (name, out[name]["mesh"])
        assert out[name]["mesh"]["uncovered"] < 0.01
        assert out[name]["input"]["l1"] > 3 * out[name]["mesh"]["l1"]
    for k in range(len(edit.EDIT_LIGHTS)):
        lit = out[f"light{k + 1}"]
        assert lit["mesh"]["l1"] < 0.01, lit["mesh"]
        assert lit["mesh_own_frame"]["l1"] > lit["mesh"]["l1"] + 0.005
    assert set(out["yaw+30"]) == {*edit.METHODS, "truth"}
    summary = edit.summarise({"0": {"edits": out}})
    assert summary["yaw±30"]["mesh"]["l1"] == pytest.approx(
        (out["yaw-30"]["mesh"]["l1"] + out["yaw+30"]["mesh"]["l1"]) / 2)


def test_keep_and_measure_from_the_command_line(tmp_path, monkeypatch, capsys, one_thread):
    """The two commands of the measurement run end to end on one face (tiny schedules and
    readers: what is written, not what it says)."""
    import json

    from conftest import tiny_preset
    from g2s_lite import paper, pose_regressor

    monkeypatch.setitem(paper.PRESETS, "synface64", tiny_preset())
    monkeypatch.setattr(edit, "QUICK_POOL", 32)
    monkeypatch.setattr(edit, "READER_STEPS", 20)
    monkeypatch.setattr(pose_regressor, "REGRESSOR_STEPS", 20)
    keep = tmp_path / "keep"
    assert edit.main(["keep", "--n", "1", "--keep", str(keep), "--quick"]) == 0
    assert (keep / "face_000.pt").exists()
    out = tmp_path / "r.json"
    assert edit.main(["measure", "--n", "2", "--keep", str(keep), "--quick", "--out", str(out),
                      "--markdown", str(tmp_path / "r.md")]) == 0
    result = json.loads(out.read_text())
    assert result["meta"]["n_images"] == 2 and result["meta"]["n_measured"] == 1
    assert set(result["summary"]["yaw±30"]) >= {*edit.METHODS, "truth", "n"}
    assert "| yaw±30 |" in (tmp_path / "r.md").read_text()
    assert "3D-aware editing against the true face" in capsys.readouterr().out
