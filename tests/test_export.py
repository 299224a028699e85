"""The mesh export reads back as the renderer's 3D points; the CLI writes every file it promises."""
import numpy as np
import torch
from PIL import Image

from g2s_lite.__main__ import main
from g2s_lite import export
from g2s_lite.export import save_obj
from g2s_lite.render import Renderer
from conftest import smooth_depth


def read_obj(path):
    verts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(x) - 1 for x in line.split()[1:]])
    return torch.tensor(verts), torch.tensor(faces)


def test_obj_round_trip(tmp_path):
    r = Renderer(16)
    depth = smooth_depth(1, 16)
    albedo = torch.rand(1, 3, 16, 16) * 2 - 1
    verts, faces = read_obj(save_obj(tmp_path / "m.obj", depth, albedo, r))
    assert verts.shape == (256, 6) and faces.shape == (2 * 15 * 15, 3)
    points = r.points(depth)[0].reshape(-1, 3) * torch.tensor([1.0, -1.0, -1.0])
    assert torch.allclose(verts[:, :3], points, atol=1e-5)
    assert torch.allclose(verts[:, 3:], ((albedo[0] + 1) / 2).reshape(3, -1).T, atol=1e-4)
    assert faces.min() == 0 and faces.max() == 255


def test_cli_writes_its_files(tmp_path, monkeypatch, capsys):
    from conftest import tiny_preset
    from g2s_lite import paper
    from g2s_lite.synth import SynFaces

    # what is written, not how good it is: the preset cut to a few steps
    monkeypatch.setitem(paper.PRESETS, "synface64", tiny_preset())
    from g2s_lite.viz import to_image

    face = SynFaces(64).sample(1, seed=5)["image"]
    Image.fromarray((to_image(face) * 255).round().astype(np.uint8)).save(tmp_path / "face.png")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "face.png"), "--out", str(out), "--quick",
                 "--no-progress"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names >= {"depth.png", "normal.png", "albedo.png", "input.png", "reconstruction.png",
                     "shading.png", "mesh.obj", "rotation.gif", "factors.pt"}
    factors = torch.load(out / "factors.pt", weights_only=True)
    assert factors["depth"].shape == (1, 64, 64) and factors["normal"].shape == (1, 64, 64, 3)
    # the reconstruction, ready to edit again on the mesh route (the nets: --save-nets)
    back = export.load_reconstruction(out)
    assert torch.equal(back.depth, factors["depth"]) and back.gan_crop == 1.0
    assert back.crop == [0, 0, 64, 64] and back.nets is None and "encoder" not in factors
    assert Image.open(out / "rotation.gif").n_frames > 10
    assert "done in" in capsys.readouterr().out
    assert main(["reconstruct", str(tmp_path / "missing.png"), "--out", str(out)]) == 2
    # a file that is no pretrained-nets file is refused with a message, not a traceback
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["reconstruct", str(tmp_path / "face.png"), "--out", str(out),
                 "--pretrained", str(tmp_path / "junk.pt")]) == 2
    assert "pretrained-nets file" in capsys.readouterr().err


def test_the_mesh_view_has_a_vertex_per_pixel_coloured_by_the_albedo():
    import math

    depth = torch.full((1, 8, 8), 1.0)
    albedo = torch.linspace(-1, 1, 3 * 64).reshape(1, 3, 8, 8)
    mesh = export.mesh_view(depth, albedo).data[0]
    assert len(mesh.x) == 64 and len(mesh.i) == 2 * 7 * 7  # two triangles per grid square
    colour = (albedo[0].reshape(3, -1).T + 1) / 2
    assert torch.allclose(torch.tensor(mesh.vertexcolor, dtype=torch.float32), colour)
    # a flat depth gives a flat mesh, facing the viewer (z flipped for viewers: −1 everywhere)
    assert all(math.isclose(z, -1.0, abs_tol=1e-6) for z in mesh.z)
