"""The authors' generators run here: parity with reference outputs of their code (issue 30).

``tests/fixtures/authors/`` holds, for three configurations of the authors' generator (CUB class-conditional, which
MeshInversion uses; PASCAL3D+ class; PASCAL3D+ class + colour), a state dict in their checkpoint layout and, for three
fixed latents and classes, the texture map, the mesh map, the vertices and the vertices after a camera, made by a
faithful copy of their code with random weights (``provenance.json`` names the upstream commits and files). The
networks are a width-16 instance of the paper architecture (every channel count / 16; names, sizes of the maps,
template and latent as in the paper), so the fixture stays under 3 MB; ``paper_state_dict_manifest.json`` lists the
paper-size names and shapes, checked against our module at full width.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from meshinv_lite.gan import (
    ConvMeshConfig,
    ConvMeshGenerator,
    ImportedWeightsError,
    build_from_authors,
    config_from_authors,
    from_authors_state_dict,
    import_authors_weights,
    load_imported_generator,
    read_authors_checkpoint,
)
from meshinv_lite.render import AUTHORS_TO_OBJECT, camera_from_authors, convmesh_template, deform_vertices, sample_uv_map

FIXTURE = Path(__file__).parent / "fixtures" / "authors"
CONFIGS = ("cub_class", "p3d_class", "p3d_class_color")
TOL = 1e-5


def _their_template(rings: int) -> dict:
    return torch.load(FIXTURE / "templates.pt", weights_only=True)[f"uvsphere_{rings}rings"]


def _match(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
    """For each of our template vertices, the index of the authors' vertex at the same place (a bijection)."""
    d = torch.cdist(ours.double(), theirs.double() @ AUTHORS_TO_OBJECT.T)
    dist, idx = d.min(1)
    assert dist.max() < 3e-6 and len(set(idx.tolist())) == len(idx)  # their .obj holds 6 decimals
    return idx


@pytest.fixture(scope="module", params=CONFIGS)
def loaded(request):
    state, args, entry = read_authors_checkpoint(FIXTURE / request.param / "checkpoint_fixture.pth", "convmesh")
    cfg = config_from_authors(state, args, "convmesh")
    ref = torch.load(FIXTURE / request.param / "reference.pt", weights_only=True)
    c = ref["c"]
    class_id = c[:, 0] * cfg.color_classes + c[:, 1] if cfg.color_classes else c[:, 0]
    G = build_from_authors(state, cfg)
    with torch.no_grad():
        tex, mesh = G(ref["z"].float(), class_id)
    return request.param, cfg, G, ref, class_id, tex, mesh, entry


@pytest.mark.parametrize("rings", [16, 31])
def test_the_template_is_the_authors_mesh_in_our_frame(rings):
    ours, theirs = convmesh_template(rings), _their_template(rings)
    assert ours.num_vertices == theirs["vertices"].shape[0] and ours.num_faces == theirs["faces"].shape[0]
    idx = _match(ours.vertices, theirs["vertices"])
    inv = torch.empty_like(idx)
    inv[idx] = torch.arange(len(idx))
    # the same triangles (the mirror M reverses their winding), so the same outline and the same diagonals
    def canon(faces):
        return {min((a, b, c), (b, c, a), (c, a, b)) for a, b, c in faces.tolist()}
    assert canon(inv[theirs["faces"].long()][:, [0, 2, 1]]) == canon(ours.faces)
    # every face corner's UV reproduces their texture lookup: u as theirs, v moved to our row convention (512 px)
    their_corner = {}
    for f, tri in enumerate(inv[theirs["faces"].long()][:, [0, 2, 1]].tolist()):
        for r in range(3):
            their_corner[tuple(tri[r:] + tri[:r])] = (f, r)
    uv_t = theirs["uvs"].double()[theirs["face_textures"].long()][:, [0, 2, 1]]
    want = torch.stack([uv_t[..., 0], ((1 - uv_t[..., 1]) * 511 + 0.5) / 512], -1)
    got = ours.uvs.double()[ours.faces_uv]
    for f, tri in enumerate(ours.faces.tolist()):
        g, r = their_corner[tuple(tri)]
        assert torch.allclose(got[f], torch.roll(want[g], -r, 0), atol=3e-6), (f, got[f], want[g])


def test_paper_size_networks_have_the_authors_names_and_shapes():
    """At full width our module is the paper's: every key of the authors' state dict, with its shape."""
    manifest = json.loads((FIXTURE / "paper_state_dict_manifest.json").read_text())
    want = {k: tuple(v[0]) for k, v in manifest["cub_class"].items()}
    G = ConvMeshGenerator(ConvMeshConfig())  # CUB, class-conditional, 512 px: MeshInversion's
    have = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in from_authors_state_dict({k: torch.zeros(s) for k, s in want.items()}).items()} == have
    assert sum(p.numel() for p in G.parameters()) == 13_062_534


def test_maps_and_vertices_match_the_authors_code(loaded):
    name, cfg, G, ref, class_id, tex, mesh, entry = loaded
    assert entry == "generator_running_avg"  # the EMA generator the authors infer with
    t = tex * 2 - 1  # theirs is in [-1, 1]
    assert (t[..., ::8, ::8] - ref["texture_stride8"]).abs().max() <= TOL
    assert (t[..., 0:32, 112:144] - ref["texture_crop_north"]).abs().max() <= TOL  # across a mirror axis
    assert (torch.roll(t, 16, -1)[..., 480:512, 0:32] - ref["texture_crop_south_seam"]).abs().max() <= TOL  # the seam
    assert torch.allclose(t.double().sum((-1, -2)), ref["texture_sum"], rtol=1e-6, atol=1e-2)
    assert (mesh - ref["mesh_map"]).abs().max() <= TOL
    template = G.template()
    idx = _match(template.vertices, _their_template(cfg.rings)["vertices"])
    verts = deform_vertices(template, mesh)
    theirs = ref["vertices"].double() @ AUTHORS_TO_OBJECT.T
    assert (verts.double() - theirs[:, idx]).abs().max() <= TOL
    # the deformation alone (a shape-only inversion stage) is the same map
    with torch.no_grad():
        assert torch.equal(G.deformation(ref["z"].float(), class_id), mesh)


def test_texture_colours_at_every_uv_match_the_authors_renderer(loaded):
    """Our lookup (``sample_uv_map``, as the renderer does it) with their UVs moved to our row convention gives the
    colour their renderer gives at every one of their texture coordinates. (Our template's own UVs equal these to
    3e-6, the .obj's rounding: ``test_the_template_is_the_authors_mesh_in_our_frame``.)"""
    name, cfg, G, ref, class_id, tex, mesh, entry = loaded
    vt = _their_template(cfg.rings)["uvs"].double()
    h = tex.shape[-2]
    ours = torch.stack([vt[:, 0], ((1 - vt[:, 1]) * (h - 1) + 0.5) / h], -1).float()
    colours = sample_uv_map(tex, ours) * 2 - 1  # (B, 3, T)
    assert (colours.transpose(1, 2) - ref["uv_colors"]).abs().max() <= TOL


def test_their_camera_renders_the_same_picture(loaded):
    """``camera_from_authors`` puts every vertex where their camera (with its ``[1, -1, -1]`` flip) does; ``z`` is
    negated (larger ``z`` is farther here, nearer there)."""
    name, cfg, G, ref, class_id, tex, mesh, entry = loaded
    template = G.template()
    idx = _match(template.vertices, _their_template(cfg.rings)["vertices"])
    cam = camera_from_authors(ref["cam_scale"], ref["cam_translation"], ref["cam_quaternion_wxyz"])
    got = cam.apply(deform_vertices(template, mesh)).double()
    want = ref["vertices_dibr"].double()[:, idx] * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert (got - want).abs().max() <= TOL


def test_the_template_is_wound_outward_and_renders(loaded):
    from meshinv_lite.config import RenderConfig
    from meshinv_lite.render import WeakPerspectiveCamera, render_mesh

    name, cfg, G, ref, class_id, tex, mesh, entry = loaded
    template = G.template()
    out = render_mesh(template, deform_vertices(template, mesh), WeakPerspectiveCamera.from_view([0.0, 90, 180], 10.0, 0.6),
                      tex, RenderConfig(image_size=64))
    assert (out.mask.flatten(1).mean(1) > 0.05).all() and torch.isfinite(out.image).all()


def test_import_writes_a_checked_file_that_loads_to_the_same_generator(tmp_path, loaded):
    name, cfg, G, ref, class_id, tex, mesh, entry = loaded
    src = FIXTURE / name / "checkpoint_fixture.pth"
    info = import_authors_weights(src, "convmesh", tmp_path / "g.pt")
    assert info["source"]["sha256"] and info["config"]["rings"] == cfg.rings
    assert json.loads((tmp_path / "g.json").read_text())["source"]["entry"] == "generator_running_avg"
    G2, prov = load_imported_generator(tmp_path / "g.pt")
    with torch.no_grad():
        tex2, mesh2 = G2(ref["z"].float(), class_id)
    assert torch.equal(tex2, tex) and torch.equal(mesh2, mesh)


# refusals --------------------------------------------------------------------------------------------------------

def _cub_checkpoint() -> dict:
    return torch.load(FIXTURE / "cub_class" / "checkpoint_fixture.pth", weights_only=True)


def _write(tmp_path, ckpt, name="c.pth"):
    p = tmp_path / name
    torch.save(ckpt, p)
    return p


def test_missing_wrong_and_foreign_checkpoints_are_refused_with_what_was_expected(tmp_path):
    out = tmp_path / "out.pt"
    with pytest.raises(ImportedWeightsError, match="no checkpoint at .*download the authors' pretrained GAN"):
        import_authors_weights(tmp_path / "nope.pth", "meshinversion", out)
    with pytest.raises(ImportedWeightsError, match="--from must be one of"):
        import_authors_weights(FIXTURE / "cub_class" / "checkpoint_fixture.pth", "cmr", out)
    # truncated
    raw = (FIXTURE / "cub_class" / "checkpoint_fixture.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImportedWeightsError, match="not a readable PyTorch checkpoint"):
        import_authors_weights(tmp_path / "cut.pth", "meshinversion", out)
    # no generator in it (e.g. an optimizer-only file)
    with pytest.raises(ImportedWeightsError, match="has no generator weights.*generator_running_avg"):
        import_authors_weights(_write(tmp_path, {"optimizer_g": {}, "epoch": 3}), "convmesh", out)
    # a key missing, a shape changed
    ck = _cub_checkpoint()
    del ck["generator_running_avg"]["blk4.conv2.weight_u"]
    with pytest.raises(ImportedWeightsError, match=r"missing: blk4\.conv2\.parametrizations\.weight\.0\._u"):
        import_authors_weights(_write(tmp_path, ck), "meshinversion", out)
    ck = _cub_checkpoint()
    ck["generator_running_avg"]["blk5.norm1.fc_beta.weight"] = torch.zeros(3, 128)
    with pytest.raises(ImportedWeightsError, match=r"wrong shape: blk5\.norm1\.fc_beta\.weight \(3, 128\) \(expected \(8, 128\)\)"):
        import_authors_weights(_write(tmp_path, ck), "meshinversion", out)
    # another architecture: our own shipped prior's file, and a text-conditioned or texture-only authors' model
    from meshinv_lite.gan import shipped_paths

    with pytest.raises(ImportedWeightsError, match="no generator weights"):
        import_authors_weights(shipped_paths()[0], "convmesh", out)
    ck = _cub_checkpoint()
    ck["generator_running_avg"]["att.conv_context.weight"] = torch.zeros(16, 16, 1, 1)
    with pytest.raises(ImportedWeightsError, match="text-conditioned"):
        import_authors_weights(_write(tmp_path, ck), "convmesh", out)
    ck = _cub_checkpoint()
    del ck["generator_running_avg"]["conv_mesh.weight"]
    with pytest.raises(ImportedWeightsError, match="no mesh head"):
        import_authors_weights(_write(tmp_path, ck), "convmesh", out)
    ck = _cub_checkpoint()
    del ck["args"]
    with pytest.raises(ImportedWeightsError, match="pass --rings 16"):
        import_authors_weights(_write(tmp_path, ck), "convmesh", out)
    assert config_from_authors(ck["generator_running_avg"], {}, "meshinversion").rings == 16  # MeshInversion: CUB only
    assert not out.exists()  # nothing was written by any refused import


def test_a_crafted_checkpoint_never_runs_and_a_damaged_import_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"generator_running_avg": {"x": Evil()}}, tmp_path / "evil.pth")
    with pytest.raises(ImportedWeightsError, match="could run code"):
        import_authors_weights(tmp_path / "evil.pth", "convmesh", tmp_path / "o.pt")
    assert not marker.exists()
    import_authors_weights(FIXTURE / "cub_class" / "checkpoint_fixture.pth", "meshinversion", tmp_path / "g.pt")
    state = torch.load(tmp_path / "g.pt", weights_only=True)
    state["state_dict"]["fc.bias"][0] += 1.0
    torch.save(state, tmp_path / "g.pt")
    with pytest.raises(ImportedWeightsError, match="do not match their checksum.*import-weights"):
        load_imported_generator(tmp_path / "g.pt")
    with pytest.raises(ImportedWeightsError, match="already imported"):
        import_authors_weights(tmp_path / "g.pt", "convmesh", tmp_path / "o.pt")


def test_cli_import_weights(tmp_path, capsys):
    from meshinv_lite.cli import main

    code = main(["import-weights", str(FIXTURE / "p3d_class_color" / "checkpoint_fixture.pth"), "--from", "convmesh",
                 "--out", str(tmp_path / "cars.pt")])
    assert code == 0 and (tmp_path / "cars.pt").exists() and (tmp_path / "cars.json").exists()
    assert "10 classes x 12 colours" in capsys.readouterr().out
    assert main(["import-weights", str(tmp_path / "missing.pth"), "--from", "convmesh"]) == 2
    assert "error: no checkpoint at" in capsys.readouterr().err


def test_inversion_runs_on_an_imported_generator_with_its_own_template():
    """``invert`` takes the generator's own template: a render of the authors' generator is fitted, not merely run."""
    from dataclasses import replace

    from meshinv_lite.inversion import InversionConfig, InversionStage, invert
    from meshinv_lite.render import WeakPerspectiveCamera, render_mesh

    state, args, _ = read_authors_checkpoint(FIXTURE / "cub_class" / "checkpoint_fixture.pth", "meshinversion")
    G = build_from_authors(state, config_from_authors(state, args, "meshinversion"))
    ref = torch.load(FIXTURE / "cub_class" / "reference.pt", weights_only=True)
    class_id = ref["c"][:, 0]
    with torch.no_grad():
        tex, mesh = G(ref["z"].float(), class_id)
    icfg = replace(InversionConfig.for_profile("quick", texture_losses=(("l1", 1.0),), init_candidates=4, init_batch=4),
                   stages=(InversionStage(15, 0.1, 0.0), InversionStage(10, 0.03, 0.0)))
    cams = WeakPerspectiveCamera.from_view([40.0, 200.0], 15.0, 0.6)
    template = G.template()
    with torch.no_grad():
        target = render_mesh(template, deform_vertices(template, mesh[:2]), cams, tex[:2], icfg.render)
    rec = invert(G, target.image, target.mask, cams, class_id[:2], icfg, seed=0)
    assert rec.vertices.shape == (2, 482, 3)
    assert (rec.terms["total"] < rec.init_loss).all()
