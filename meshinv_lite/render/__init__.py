"""Stage 0 (notebook 00): meshes, cameras and the differentiable renderer.

* :mod:`.mesh`: the UV-sphere template, its UV layout, meshes from deformation maps, normals;
* :mod:`.camera`: weak-perspective cameras, quaternions, image coordinates, view sampling;
* :mod:`.dibr`: the DIB-R renderer in four primitives (``rasterize``, ``interpolate``/``texture``,
  ``soft_mask``, ``project``), :func:`render_mesh`, which composes them, and :func:`render_silhouette` (no texture);
* :mod:`.convmesh_template`: the authors' template (ConvMesh, MeshInversion) in this package's frame and conventions;
* :mod:`.views`: meshes turned about their vertical axis (:func:`render_turned`), and the authors' multi-view protocol.
"""
from .camera import (
    WeakPerspectiveCamera,
    azimuth_elevation,
    check_camera,
    matrix_to_quaternion,
    ndc_to_pixel,
    normalize_quaternion,
    orbit_azimuths,
    orbit_cameras,
    pixel_centers,
    pixel_to_ndc,
    qrot,
    quaternion_multiply,
    quaternion_to_matrix,
    random_cameras,
    rotation_angle_deg,
    scale_camera_error,
    view_rotation,
)
from .dibr import (
    Fragments,
    RenderOutput,
    interpolate,
    project,
    rasterize,
    render_mesh,
    render_silhouette,
    soft_mask,
    texture,
)
from .convmesh_template import AUTHORS_TO_OBJECT, ConvMeshVertexSampling, camera_from_authors, convmesh_template
from .mesh import (
    TemplateMesh,
    deform_vertices,
    face_adjacency,
    face_normals,
    make_uv_sphere,
    mirror_uv_map,
    sample_uv_map,
    sample_vertex_offsets,
    symmetrize_uv_map,
    template_from_config,
    vertex_normals,
)
from .views import (
    PROTOCOL_ELEVATION_DEG,
    PROTOCOL_FRONT_BACK,
    PROTOCOL_SCALE,
    PROTOCOL_STEP_DEG,
    normalize_for_protocol,
    protocol_azimuths,
    protocol_cameras,
    render_turned,
    turn_cameras,
)
