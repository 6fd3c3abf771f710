import numpy as np
import pytest
import torch

from meshinv_lite.export import export_glb, export_obj
from meshinv_lite.render import deform_vertices, make_uv_sphere

import trimesh  # a declared test dependency (pyproject [test]): a missing one is an error, not a skip


def sample_mesh():
    t = make_uv_sphere()
    v = deform_vertices(t, 0.1 * torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)))[0]
    tex = torch.rand(3, 32, 64, generator=torch.Generator().manual_seed(1))
    return t, v, tex


def expected_corners(t, v):
    """(F, 3, 3) corner positions and (F, 3, 2) corner UVs in our convention."""
    return v[t.faces].numpy(), t.uvs[t.faces_uv].numpy()


def _canonical_faces(faces) -> list:
    """Index triples, each rotated to start at its smallest index: rotation-free, winding kept."""
    out = []
    for f in np.asarray(faces).tolist():
        k = f.index(min(f))
        out.append(tuple(f[k:] + f[:k]))
    return sorted(out)


def check_loaded(mesh, t, v, tex, flip_v: bool):
    assert len(mesh.faces) == t.num_faces
    # the same faces, corner triple by corner triple and with the same winding (outward normals stay outward):
    # each loaded vertex is one of ours (nearest within 1e-4), then the faces are compared as index triples
    from scipy.spatial import cKDTree

    dist, ours = cKDTree(v.numpy()).query(mesh.vertices)
    assert dist.max() < 1e-4
    assert _canonical_faces(ours[mesh.faces]) == _canonical_faces(t.faces.numpy())
    # every loaded vertex has the UV of a template UV point at that position
    from scipy.spatial import cKDTree

    uv = mesh.visual.uv
    assert uv is not None and len(uv) == len(mesh.vertices)
    ref_pos, ref_uv = v[t.uv_to_vertex].numpy(), t.uvs.numpy()
    tree = cKDTree(ref_pos)
    for p, q in zip(mesh.vertices, uv):
        near = tree.query_ball_point(p, 1e-4)
        assert near, f"loaded vertex {p} is not a template vertex"
        q = np.array([q[0], 1 - q[1]]) if flip_v else np.asarray(q)
        assert any(np.allclose(q, ref_uv[j], atol=1e-4) for j in near), f"vertex {p} has uv {q}"
    img = mesh.visual.material.image if hasattr(mesh.visual.material, "image") else mesh.visual.material.baseColorTexture
    # the image itself, pixel for pixel: row 0 is v = 0 (the north pole row); an upside-down PNG fails here
    want = (tex.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(np.asarray(img.convert("RGB")), want)


def test_obj_round_trip(tmp_path):
    t, v, tex = sample_mesh()
    paths = export_obj(tmp_path / "bird", v, t, tex)
    assert [p.suffix for p in paths] == [".obj", ".mtl", ".png"]
    mesh = trimesh.load(paths[0], process=False, force="mesh")
    # trimesh reports OBJ texture coordinates with v = 0 at the image bottom, i.e. 1 - ours
    check_loaded(mesh, t, v, tex, flip_v=True)


def test_glb_round_trip(tmp_path):
    t, v, tex = sample_mesh()
    path = export_glb(tmp_path / "bird", v, t, tex)
    scene = trimesh.load(path, process=False)
    mesh = next(iter(scene.geometry.values())) if hasattr(scene, "geometry") else scene
    assert len(mesh.vertices) == len(t.uvs)
    # trimesh flips glTF's top-left UV origin to bottom-left as well
    check_loaded(mesh, t, v, tex, flip_v=True)


def test_export_rejects_bad_input(tmp_path):
    t, v, tex = sample_mesh()
    with pytest.raises(ValueError, match="verts"):
        export_obj(tmp_path / "x", v[:10], t, tex)
    with pytest.raises(ValueError, match="texture"):
        export_glb(tmp_path / "x", v, t, tex[None])
    with pytest.raises(ValueError, match="NaN"):
        export_glb(tmp_path / "x", v * float("nan"), t, tex)


def test_names_with_dots_keep_their_whole_name(tmp_path):
    t, v, tex = sample_mesh()
    a = export_obj(tmp_path / "bird.v2", v, t, tex)
    b = export_obj(tmp_path / "bird.v3", v, t, tex * 0.5)
    assert [p.name for p in a] == ["bird.v2.obj", "bird.v2.mtl", "bird.v2.png"]
    assert [p.name for p in b] == ["bird.v3.obj", "bird.v3.mtl", "bird.v3.png"]
    assert "mtllib bird.v2.mtl" in a[0].read_text() and "map_Kd bird.v2.png" in a[1].read_text()
    assert a[2].read_bytes() != b[2].read_bytes()  # the second export did not overwrite the first
    assert export_glb(tmp_path / "bird.v2", v, t, tex).name == "bird.v2.glb"
    assert export_obj(tmp_path / "cat.obj", v, t, tex)[0].name == "cat.obj"  # an export extension is replaced
    assert export_glb(tmp_path / "cat.glb", v, t, tex).name == "cat.glb"
