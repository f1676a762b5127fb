"The layers against direct, loop-by-loop computations of their definitions."
import math
import torch
from rsacfn.models.layers import CrossFusion, FeatureSelfAttention, MixerBlock, ResidualPair


def test_feature_self_attention_matches_its_definition():
    torch.manual_seed(0)
    sa, x = FeatureSelfAttention(hidden=5), torch.randn(2, 4)
    y, A = sa(x)
    for b in range(2):
        q = [sa.query.weight[:, 0] * x[b, i] + sa.query.bias for i in range(4)]
        k = [sa.key.weight[:, 0] * x[b, j] + sa.key.bias for j in range(4)]
        v = [sa.value.weight[0, 0] * x[b, j] + sa.value.bias[0] for j in range(4)]
        for i in range(4):
            w = torch.softmax(torch.stack([q[i] @ k[j] / math.sqrt(5) for j in range(4)]), 0)
            torch.testing.assert_close(A[b, i], w)
            torch.testing.assert_close(y[b, i], sum(w[j] * v[j] for j in range(4)))


def test_cross_fusion_keeps_unimodal_and_bimodal_terms():
    a, t = torch.randn(3, 4), torch.randn(3, 2)
    z = CrossFusion()(a, t).view(3, 5, 3)
    torch.testing.assert_close(z[:, 0, 0], torch.ones(3))
    torch.testing.assert_close(z[:, 1:, 0], a); torch.testing.assert_close(z[:, 0, 1:], t)
    torch.testing.assert_close(z[:, 1:, 1:], a[:, :, None] * t[:, None, :])


def test_residual_pair_second_block_sees_input_and_first_block():
    torch.manual_seed(0)
    rp, x = ResidualPair(6, hidden=3).eval(), torch.randn(2, 6)
    r1 = torch.relu(rp.block1[0](x))
    torch.testing.assert_close(rp(x), torch.relu(rp.block2[0](torch.cat([x, r1], 1))))


def test_mixer_block_is_the_published_one():
    "Both published implementations: one LayerNorm used twice, the channel MLP on ln(y), y the token-mixing output."
    torch.manual_seed(0)
    mb, x = MixerBlock(seq_len=4, dim=3).eval(), torch.randn(2, 4, 3)
    with torch.no_grad():
        for p in mb.norm.parameters(): p.add_(torch.randn_like(p))  # not the identity LayerNorm
    ln = lambda u: torch.nn.functional.layer_norm(u, (3,), mb.norm.weight, mb.norm.bias)
    tok = lambda u: mb.token_mlp[2](torch.nn.functional.gelu(mb.token_mlp[0](u)))
    ch = lambda u: mb.channel_mlp[2](torch.nn.functional.gelu(mb.channel_mlp[0](u)))
    y = tok(ln(x).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(mb(x), x + y + ch(ln(y)))
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in mb.modules()) == 1


def test_mixer_block_textbook_variant():
    torch.manual_seed(0)
    mb, x = MixerBlock(seq_len=4, dim=3, variant='textbook').eval(), torch.randn(2, 4, 3)
    tok = lambda u: mb.token_mlp[2](torch.nn.functional.gelu(mb.token_mlp[0](u)))
    ch = lambda u: mb.channel_mlp[2](torch.nn.functional.gelu(mb.channel_mlp[0](u)))
    h = x + tok(mb.norm(x).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(mb(x), h + ch(mb.channel_norm(h)))
