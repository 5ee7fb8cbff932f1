"""The compiled path picks its forwards without asking a compiled module for its truth value."""
import pytest
import torch
from torch import nn

from kdlib import members


class Classifier(nn.Module):  # like kdlib's: a module without __len__
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def test_a_compiled_teacher_forward_wraps_the_teacher_and_an_eager_one_is_the_teacher_itself():
    teacher = Classifier()
    assert members.teacher_forward(teacher, False) is teacher
    compiled = members.teacher_forward(teacher, True)  # torch.compile wraps lazily: nothing compiles here
    assert compiled is not teacher and compiled._orig_mod is teacher
    x = torch.randn(2, 4)
    assert torch.equal(members.teacher_forward(teacher, False)(x), teacher(x))


@pytest.mark.slow  # compiles a small graph (seconds on a CPU)
def test_a_member_with_a_compiled_forward_trains_through_it_and_matches_eager():
    torch.manual_seed(0)
    model = Classifier()
    member = members.Member(run=None, model=model, optimizer=None, scheduler=None,
                            forward=members.compiled_forward(model, True))
    x = torch.randn(5, 4)
    assert torch.allclose(member.logits(x), model(x), atol=1e-6)
    assert members.Member(run=None, model=model, optimizer=None, scheduler=None).logits(x).equal(model(x))
