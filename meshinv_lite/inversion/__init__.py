"""Stages 4 and 5 (notebooks 04, 05): MeshInversion and what its results allow.

* :mod:`.config`: :class:`InversionConfig` and the schedule's :class:`InversionStage`;
* :mod:`.objective`: :class:`InversionObjective`, the loss of one latent code (render, Chamfer texture and
  mask losses, regularisers);
* :mod:`.search`: :func:`invert` / :func:`invert_batch`, the search (best-of-N start, staged Adam, camera
  refinement, the latent shell) and the :class:`Reconstruction` it returns;
* :mod:`.adapt`: the second phase after the search (:func:`adapt_reconstruction`): a silhouette-fitted shape
  residual and the photo's visible texels over G's texture, where the prior cannot make what the photo shows;
* :mod:`.transfer`: texture transfer between reconstructions (one UV layout for all);
* :mod:`.regression`: the regression baseline the paper compares against (:func:`regress`: the encoder's one
  forward pass, with the prior's texture or a texture flow).
"""
from .adapt import AdaptConfig, adapt_reconstruction
from .config import AUTHORS_STAGES, UNKNOWN_CLASS, InversionConfig, InversionStage
from .objective import InversionObjective
from .regression import REGRESSION_TEXTURES, regress, regress_batch
from .search import Reconstruction, invert, invert_batch, project_to_shell
from .transfer import WHITE, grid_figure, swap_textures, transfer_grid, transfer_views
