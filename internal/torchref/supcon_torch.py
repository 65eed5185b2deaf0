"""SupContrast's SupConResNet (networks/resnet_big.py) and SupConLoss
(losses.py, contrast_mode 'all'), with stage widths, block counts, input
channels and stem made parameters: the PyTorch side of supflow's checkpoint
compatibility script and trainer benchmark. Needs only Debian's
python3-torch.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F



def shortcut(in_planes, out_planes, stride):
    """The identity, or a strided 1x1 convolution + batch norm where the
    shape changes (state_dict names shortcut.0 and shortcut.1)."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut(in_planes, self.expansion * planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)
        self.shortcut = shortcut(in_planes, self.expansion * planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, widths, in_channel=3, stem="cifar"):
        super().__init__()
        self.in_planes = widths[0]
        if stem == "imagenet":  # 7x7/2 + max-pool; the pool has no parameters
            self.conv1 = nn.Conv2d(in_channel, widths[0], 7, 2, 3, bias=False)
            self.pool = nn.MaxPool2d(3, 2, 1)
        else:  # SupContrast's CIFAR stem
            self.conv1 = nn.Conv2d(in_channel, widths[0], 3, 1, 1, bias=False)
            self.pool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1 = self._make_layer(block, widths[0], num_blocks[0], 1)
        self.layer2 = self._make_layer(block, widths[1], num_blocks[1], 2)
        self.layer3 = self._make_layer(block, widths[2], num_blocks[2], 2)
        self.layer4 = self._make_layer(block, widths[3], num_blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def _make_layer(self, block, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.pool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(self.avgpool(out), 1)


class SupConResNet(nn.Module):
    def __init__(self, block, num_blocks, widths, in_channel, head, feat_dim, stem="cifar"):
        super().__init__()
        self.encoder = ResNet(block, num_blocks, widths, in_channel, stem)
        dim_in = widths[3] * block.expansion
        if head == "linear":
            self.head = nn.Linear(dim_in, feat_dim)
        else:
            self.head = nn.Sequential(
                nn.Linear(dim_in, dim_in), nn.ReLU(inplace=True), nn.Linear(dim_in, feat_dim)
            )

    def forward(self, x):
        return F.normalize(self.head(self.encoder(x)), dim=1)


def supcon_loss(features, labels, temperature=0.1, base_temperature=0.07):
    """SupConLoss on features [bsz, n_views, dim] with labels [bsz]."""
    bsz, n_views = features.shape[0], features.shape[1]
    labels = labels.view(-1, 1)
    mask = torch.eq(labels, labels.T).float()
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    logits = torch.matmul(contrast, contrast.T) / temperature
    logits = logits - logits.max(dim=1, keepdim=True)[0].detach()
    mask = mask.repeat(n_views, n_views)
    logits_mask = torch.ones_like(mask) - torch.eye(bsz * n_views, device=features.device)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    pos = mask.sum(1)
    pos = torch.where(pos < 1e-6, torch.ones_like(pos), pos)
    mean_log_prob_pos = (mask * log_prob).sum(1) / pos
    return (-(temperature / base_temperature) * mean_log_prob_pos).mean()
