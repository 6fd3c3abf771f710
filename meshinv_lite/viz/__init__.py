"""Pictures: image grids, UV maps, the live loss panel, the 3D viewer, photo figures.

* :mod:`.figures`: image grids, UV maps, turntables, saving figures for slides;
* :mod:`.live`: :class:`LiveLoss`, the loss panel that updates while an optimisation runs;
* :mod:`.viewer`: the pythreejs 3D viewer and the photo upload widget;
* :mod:`.photo_figures`: the overlay and hypotheses figures of notebook 07.
"""
from .figures import face_id_image, image_grid, plot_uv_layout, save_figure, show_uv_maps, turntable
from .live import LiveLoss, in_notebook_frontend
from .photo_figures import hypotheses_figure, photo_overlay
from .viewer import mesh_viewer, photo_upload
