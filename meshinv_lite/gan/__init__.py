"""Stage 3 (notebook 03): the GAN prior, its pretraining and the prior that ships with the package.

* :mod:`.networks`: the class-conditional UV-map generator and the UV-space and image-space discriminators;
* :mod:`.config`: :class:`PretrainConfig`;
* :mod:`.losses`: the adversarial losses (LSGAN, hinge);
* :mod:`.inputs`: what pretraining reads (pseudo-GT maps, images, cameras) and how it is built;
* :mod:`.trainer`: :class:`GANTrainer`, the alternating D and G steps, EMA, resumable checkpoints;
* :mod:`.checkpoint`: reading and checking checkpoints, loading a generator;
* :mod:`.quality`: sample statistics and shape plausibility of a generator;
* :mod:`.prior`: the shipped prior (load it, or train the profile's own) for notebooks 04-07;
* :mod:`.convmesh`: the authors' generator architecture (ConvMesh, MeshInversion), so their weights run here;
* :mod:`.imported`: converting the authors' checkpoints (``cli import-weights``) and loading the result.
"""
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CHECKSUMMED,
    RETRAIN_HINT,
    CheckpointError,
    checkpoint_config,
    config_from_dict,
    load_generator,
    read_checkpoint,
)
from .config import PretrainConfig
from .convmesh import ConvMeshConfig, ConvMeshGenerator
from .imported import (
    IMPORTED_FORMAT,
    ImportedWeightsError,
    build_from_authors,
    config_from_authors,
    from_authors_state_dict,
    import_authors_weights,
    load_imported_generator,
    read_authors_checkpoint,
)
from .inputs import TrainingData, build_training_inputs, gan_dir
from .losses import discriminator_loss, generator_loss
from .networks import (
    ConditionalBatchNorm2d,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    PatchDiscriminator,
    UpBlock,
    UVConv2d,
    UVDiscriminator,
    count_parameters,
    ema_update,
    positional_encoding,
    uv_pad,
)
from .prior import (
    PRIOR_CHOICES,
    PRIOR_FORMAT,
    PRIOR_VERSION,
    REBUILD_COMMAND,
    SHIP_ITERATION,
    SHIPPED,
    SHIPPED_BY_CATEGORY,
    SHIPPED_CARS,
    SHIPPED_DIR,
    PriorError,
    PriorRecipe,
    build_dir,
    default_prior,
    load_shipped_prior,
    prepare_prior,
    save_prior,
    shipped_paths,
    shipped_recipe,
)
from .quality import sample_quality, shape_plausibility
from .trainer import GANTrainer
