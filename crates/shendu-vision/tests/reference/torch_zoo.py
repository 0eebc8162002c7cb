"""PyTorch twins of shendu's 28x28 zoo models, built from torchvision's own classes so their
parameter names are torchvision's: used by gen_torchvision_params.py (names, shapes, counts) and
by train_mnist_torch.py (PyTorch's accuracy and speed on MNIST)."""

import torch
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


class _CifarBlock(nn.Module):
    """He et al.'s basic block with the option A shortcut as the zoo builds it: the input,
    subsampled by the stride, is added to the first `inplanes` channels of the main path."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.inplanes, self.stride = inplanes, stride

    def forward(self, x):
        main = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        short = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if main.shape[1] > self.inplanes:
            main = torch.cat([main[:, : self.inplanes] + short, main[:, self.inplanes :]], 1)
        else:
            main = main + short
        return torch.relu(main)


def resnet20(classes=10):
    """CIFAR ResNet-20 (3x32x32) as the zoo's `resnet20`: 16/32/64 channels, option A shortcuts."""
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    inplanes = 16
    for stage in range(3):
        planes = 16 << stage
        for b in range(3):
            layers.append(_CifarBlock(inplanes, planes, 2 if stage > 0 and b == 0 else 1))
            inplanes = planes
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


# The zoo training steps of `shendu bench` (Z1-Z3): model, batch and input shape.
ZOO_STEPS = {
    "Z1 ResNet-20 train": (resnet20, 32, (3, 32, 32)),
    "Z2 MobileNetV2-28 train": (mobilenet_v2_mnist, 64, (1, 28, 28)),
    "Z3 ShuffleNetV2-28 train": (shufflenet_v2_mnist, 64, (1, 28, 28)),
}
