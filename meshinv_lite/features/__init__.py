"""Frozen CNN feature extractors, for a loss and, separately, for metrics.

* :mod:`.base`: :class:`FeatureExtractor`, weight-file resolution, masked features;
* :mod:`.vgg`: VGG-19 up to relu3_1 (the paper's loss network) and its labelled offline fallback;
* :mod:`.inception`: FID's Inception-v3 and its labelled fallback;
* :mod:`.in_domain`: small networks trained on SynthBirds (one for the loss, one for metrics), shipped;
* :mod:`.in_domain_training`: how those networks are trained (the one-command rebuild);
* :mod:`.registry`: extractors by name, cached: :func:`load_feature_extractor`, :func:`load_fid_extractor`.
"""
from .base import ExtractorKind, FeatureExtractor, check_feature_images, masked_features, resolve_weights
from .in_domain import (
    FEATURES_FORMAT,
    FEATURES_VERSION,
    BY_CATEGORY,
    CAR_LOSS_NET,
    CAR_METRIC_NET,
    LOSS_LABEL,
    LOSS_NET,
    METRIC_LABEL,
    METRIC_NET,
    REBUILD_COMMAND,
    RECIPES,
    SHIPPED_DIR,
    TARGET_CHANNELS,
    DomainFeatureNet,
    DomainNetConfig,
    FeatureNetError,
    FeatureNetRecipe,
    load_feature_net,
    save_feature_net,
    shipped_paths,
)
from .in_domain_training import (
    FeatureTrainingData,
    build_feature_net,
    dense_targets,
    held_out_quality,
    load_training_data,
    train_feature_net,
    training_losses,
)
from .inception import (
    FALLBACK_SIZE,
    INCEPTION_FILENAME,
    INCEPTION_SIZE,
    INCEPTION_URL,
    KIND,
    BasicConv2d,
    FIDInceptionV3,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    PooledFallback,
    fid_fallback,
    fid_inception_v3,
    inception_hub_path,
)
from .registry import EXTRACTORS, clear_extractor_cache, load_feature_extractor, load_fid_extractor
from .vgg import (
    FALLBACK_SEED,
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19_CLASSIFIER_INDICES,
    VGG19_CONV_INDICES,
    VGG19_FILENAME,
    VGG19_RELU3_1_CONVS,
    VGG19_URL,
    VGG19Relu31,
    fallback_vgg19,
    vgg19_hub_path,
    vgg19_relu3_1,
)
