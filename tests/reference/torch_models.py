"""PyTorch modules shared by the reference generators and benchmarks/torch_step.py.

PSPNet on a dilated ResNet (gen_pspnet.py's description: the reference code's
networks with BatchNorm2d + activation in place of InPlaceABNSync, the same
state_dict keys, a width multiplier) and the SAGAN-style discriminator with
skd's depth rule (gen_loss_holistic.py's description). Importing this file
has no side effects; the dtype is whatever torch's default is when a module
is built."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def scale(c, width):
    return max(1, int(math.floor(c * width + 0.5)))


class BNAct(nn.BatchNorm2d):
    """InPlaceABNSync's maths: BatchNorm2d, then LeakyReLU(0.01) or nothing."""

    def __init__(self, c, leaky):
        super().__init__(c, eps=1e-5, momentum=0.1)
        self.leaky = leaky

    def forward(self, x):
        y = super().forward(x)
        return F.leaky_relu(y, 0.01) if self.leaky else y


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = BNAct(planes, False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = BNAct(planes, False)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        res = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + res)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = BNAct(planes, False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = BNAct(planes, False)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = BNAct(planes * 4, False)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + res)


class PSPModule(nn.Module):
    def __init__(self, features, out_features, dropout, sizes=(1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.AdaptiveAvgPool2d((s, s)), nn.Conv2d(features, out_features, 1, bias=False),
                          BNAct(out_features, True)) for s in sizes])
        self.bottleneck = nn.Sequential(
            nn.Conv2d(features + len(sizes) * out_features, out_features, 3, padding=1, bias=False),
            BNAct(out_features, True), nn.Dropout2d(dropout))

    def forward(self, feats):
        h, w = feats.shape[2], feats.shape[3]
        # The reference's order: the four stages, then the input.
        priors = [F.interpolate(st(feats), size=(h, w), mode="bilinear", align_corners=True)
                  for st in self.stages] + [feats]
        return self.bottleneck(torch.cat(priors, 1))


class PSPNet(nn.Module):
    def __init__(self, block, layers, classes, width=1.0, dropout=0.1):
        super().__init__()
        s = lambda c: scale(c, width)
        self.conv1 = nn.Conv2d(3, s(64), 3, 2, 1, bias=False)
        self.bn1 = BNAct(s(64), False)
        self.conv2 = nn.Conv2d(s(64), s(64), 3, 1, 1, bias=False)
        self.bn2 = BNAct(s(64), False)
        self.conv3 = nn.Conv2d(s(64), s(128), 3, 1, 1, bias=False)
        self.bn3 = BNAct(s(128), False)
        self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.inplanes = s(128)
        self.layer1 = self._make_layer(block, s(64), layers[0])
        self.layer2 = self._make_layer(block, s(128), layers[1], stride=2)
        self.layer3 = self._make_layer(block, s(256), layers[2], dilation=2)
        self.layer4 = self._make_layer(block, s(512), layers[3], dilation=4)
        p = s(512 if block is Bottleneck else 128)
        self.pspmodule = PSPModule(s(512) * block.expansion, p, dropout)
        self.head = nn.Conv2d(p, classes, 1, bias=True)
        self.dsn = nn.Sequential(nn.Conv2d(s(256) * block.expansion, p, 3, 1, 1), BNAct(p, True),
                                 nn.Dropout2d(dropout), nn.Conv2d(p, classes, 1, bias=True))

    def _make_layer(self, block, planes, blocks, stride=1, dilation=1):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 BNAct(planes * block.expansion, False))
        layers = [block(self.inplanes, planes, stride, dilation, down)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, 1, dilation))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        x = self.layer2(self.layer1(x))
        x3 = self.layer3(x)
        q_dsn = self.dsn(x3)
        f = self.pspmodule(self.layer4(x3))
        return self.head(f), q_dsn, f


class SelfAttention(nn.Module):
    def __init__(self, ch):
        super().__init__()
        cq = max(1, ch // 8)
        self.query_conv = nn.Conv2d(ch, cq, 1)
        self.key_conv = nn.Conv2d(ch, cq, 1)
        self.value_conv = nn.Conv2d(ch, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, c, h, w = x.shape
        q = self.query_conv(x).reshape(n, -1, h * w)
        k = self.key_conv(x).reshape(n, -1, h * w)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (n, P, P)
        v = self.value_conv(x).reshape(n, c, h * w)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(n, c, h, w)
        return self.gamma * out + x


def sn_block(cin, cout):
    return nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.1))


class Discriminator(nn.Module):
    def __init__(self, cin, d, mode, h, w):
        super().__init__()
        self.mode = mode
        if mode == 1:
            self.preprocess_additional = nn.BatchNorm2d(cin)
        self.l1 = sn_block(cin, d)
        self.l2 = sn_block(d, 2 * d)
        self.l3 = sn_block(2 * d, 4 * d)
        self.l4 = sn_block(4 * d, 8 * d)
        self.attn1 = SelfAttention(4 * d)
        self.attn2 = SelfAttention(8 * d)
        for _ in range(4):
            h, w = h // 2, w // 2
        self.last = nn.Sequential(nn.Conv2d(8 * d, 1, (min(4, h), min(4, w))))

    def forward(self, x, image=None):
        if image is not None:
            img = F.interpolate(image, size=x.shape[2:], mode="bilinear", align_corners=True)
            x = torch.cat([torch.softmax(x, dim=1), img], dim=1)
        if self.mode == 1:
            x = self.preprocess_additional(x)
        elif self.mode == 2:
            x = torch.tanh(x)
        else:
            x = 2 * (x / 255 - 0.5)
        out = self.attn1(self.l3(self.l2(self.l1(x))))
        out = self.attn2(self.l4(out))
        return self.last(out).mean(dim=(2, 3), keepdim=True)  # (N, 1, 1, 1)
