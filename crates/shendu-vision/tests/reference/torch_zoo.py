"""PyTorch twins of shendu's 28x28 zoo models, built from torchvision's own classes so their
parameter names are torchvision's: used by gen_torchvision_params.py (names, shapes, counts) and
by train_mnist_torch.py (PyTorch's accuracy and speed on MNIST)."""

from torch import nn
from torchvision.models import MobileNetV2, ShuffleNetV2
from torchvision.ops.misc import Conv2dNormActivation


def mobilenet_v2_mnist(classes=10):
    """torchvision's MobileNetV2 at width 0.5 with the stem at stride 1, the 160-channel stage
    at stride 1 (28 -> 14 -> 7 -> 4), one input channel and a 512-channel last conv."""
    settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 1], [6, 320, 1, 1]]
    m = MobileNetV2(num_classes=classes, width_mult=0.5, inverted_residual_setting=settings)
    m.features[0] = Conv2dNormActivation(1, 16, stride=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.features[-1] = Conv2dNormActivation(160, 512, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(512, classes)
    m.last_channel = 512
    return m


def shufflenet_v2_mnist(classes=10):
    """torchvision's ShuffleNetV2 0.5x with the stem at stride 1 and no max pool
    (28 -> 14 -> 7 -> 4), one input channel and a 512-channel conv5."""
    m = ShuffleNetV2([4, 8, 4], [24, 48, 96, 192, 512], num_classes=classes)
    m.conv1[0] = nn.Conv2d(1, 24, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


MNIST_MODELS = {"mobilenet_v2_mnist": mobilenet_v2_mnist, "shufflenet_v2_mnist": shufflenet_v2_mnist}
