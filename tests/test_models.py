"""models.conv_norm_act: the one conv-norm-activation builder, checked against torchvision's."""

import pytest
import torch
import torch.nn as nn
from torchvision.ops.misc import Conv2dNormActivation

from course_lib import models


@pytest.mark.parametrize("kw", [dict(), dict(stride=2), dict(groups=4), dict(activation=nn.ReLU6)])
def test_conv_norm_act_is_torchvisions_module_tree(kw):
    torch.manual_seed(0)
    ours = models.conv_norm_act(8, 16, 3, **kw).eval()
    theirs = Conv2dNormActivation(8, 16, 3, stride=kw.get("stride", 1), groups=kw.get("groups", 1),
                                  activation_layer=kw.get("activation", nn.ReLU)).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())          # weights load both ways
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 8, 9, 9)
    assert torch.equal(ours(x), theirs(x))


def test_conv_norm_act_options():
    one_by_three = models.conv_norm_act(4, 4, (1, 3))
    assert one_by_three[0].padding == (0, 1) and one_by_three(torch.randn(1, 4, 5, 5)).shape == (1, 4, 5, 5)
    bare = models.conv_norm_act(4, 6, 1, norm=None, activation=None)
    assert len(bare) == 1 and bare[0].bias is not None                  # a bias only without a norm
    assert len(models.norm_act(4, activation=None)) == 1
    assert [type(m) for m in models.conv_bn_relu(4, 4)] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    with pytest.raises(TypeError):
        models.conv_norm_act(4, 4, 3, 2)                                 # stride is keyword-only
    with pytest.raises(ValueError, match="groups=3 must divide"):
        models.conv_norm_act(4, 6, groups=3)
