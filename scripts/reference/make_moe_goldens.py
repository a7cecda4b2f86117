"""Writes tests/goldens/moe/<case>.safetensors: one MiniMind MoE feed-forward layer alone, in float64.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/reference/make_moe_goldens.py [--out DIR]

x [N, H] -> router softmax -> top-k experts -> y [N, H]; aux loss (coef 0.01) as MiniMind computes it in
training; gradients of loss = sum(y * r) + aux with respect to x, the router and every expert weight
(autograd through minimind3v_ref.moe_forward). Before writing, every case is checked against MiniMind's own
MOEFeedForward (training mode, float64; loaded from the upstream snapshot into a temporary directory), an
expert that gets no token must have exactly zero gradients, and the gradients are checked against central
finite differences along a random direction.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minimind3v_ref as ref  # noqa: E402
import upstream_minimind_v  # noqa: E402

N, H, E, I = 12, 16, 4, 24
AUX_COEF = 0.01
CASES = {
    # name: top_k, norm_topk_prob, expert that must get no token (None: every expert gets tokens)
    "top1": (1, True, 3),
    "top2": (2, True, 2),
    "top2_nonorm": (2, False, None),
}


def make_inputs(seed, unused):
    g = torch.Generator().manual_seed(seed)
    d = torch.float64
    x = torch.randn(N, H, generator=g, dtype=d)
    x[:, 0] = 3.0 + 0.5 * torch.rand(N, generator=g, dtype=d)  # a feature that is > 3 for every token
    router = 1.5 * torch.randn(E, H, generator=g, dtype=d) / H ** 0.5
    if unused is not None:
        router[unused, 0] = -10.0  # ... so this expert's logit is far below the others for every token
    experts = []
    for _ in range(E):
        experts.append([torch.randn(I, H, generator=g, dtype=d) / H ** 0.5,
                        torch.randn(I, H, generator=g, dtype=d) / H ** 0.5,
                        torch.randn(H, I, generator=g, dtype=d) / I ** 0.5])
    r = torch.randn(N, H, generator=g, dtype=d)
    return x, router, experts, r


def ours(x, router, experts, r, k, norm):
    leaves = [x, router] + [w for e in experts for w in e]
    leaves = [t.clone().requires_grad_(True) for t in leaves]
    xx, rr = leaves[0], leaves[1]
    ex = [leaves[2 + 3 * e: 5 + 3 * e] for e in range(E)]
    y, aux, idx = ref.moe_forward(xx, rr, ex, k, norm, AUX_COEF)
    loss = (y * r).sum() + aux
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(leaves, grads)]
    return y.detach(), aux.detach(), idx, loss.detach(), grads


def upstream(mm, x, router, experts, r, k, norm):
    cfg = mm.MiniMindConfig(hidden_size=H, num_experts=E, num_experts_per_tok=k, moe_intermediate_size=I,
                            norm_topk_prob=norm, router_aux_loss_coef=AUX_COEF)
    m = mm.MOEFeedForward(cfg).double().train()
    with torch.no_grad():
        m.gate.weight.copy_(router)
        for e, (g_, u_, d_) in enumerate(experts):
            m.experts[e].gate_proj.weight.copy_(g_)
            m.experts[e].up_proj.weight.copy_(u_)
            m.experts[e].down_proj.weight.copy_(d_)
    xx = x.clone().requires_grad_(True)
    y = m(xx[None])[0]
    loss = (y * r).sum() + m.aux_loss
    loss.backward()
    grads = [xx.grad, m.gate.weight.grad]
    for e in range(E):
        grads += [m.experts[e].gate_proj.weight.grad, m.experts[e].up_proj.weight.grad,
                  m.experts[e].down_proj.weight.grad]
    return y.detach(), m.aux_loss.detach(), grads


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ref.REPO_ROOT, "tests", "goldens", "moe"))
    args = ap.parse_args()
    mm, _, commit = upstream_minimind_v.load()
    print(f"upstream MiniMind-V {commit}")
    failures, outputs = [], {}
    names = ["x", "router"] + [f"experts.{e}.{w}" for e in range(E) for w in ("gate", "up", "down")]
    print(f"{'case':12} {'experts used':14} {'y vs up':>9} {'aux vs up':>10} {'grad vs up':>10} {'fd rel err':>10} "
          f"{'aux':>10}")
    for ci, (case, (k, norm, unused)) in enumerate(CASES.items()):
        x, router, experts, r = make_inputs(200 + ci, unused)
        y, aux, idx, loss, grads = ours(x, router, experts, r, k, norm)
        uy, uaux, ugrads = upstream(mm, x, router, experts, r, k, norm)
        d_y, d_aux = rel(y, uy), abs(aux.item() - uaux.item()) / abs(uaux.item())
        d_g = max(rel(a, b) for a, b in zip(grads, ugrads))
        used = sorted(set(idx.flatten().tolist()))
        # finite differences of the loss along a random direction (routing does not change for a tiny step)
        g = torch.Generator().manual_seed(300 + ci)
        leaves = [x, router] + [w for e in experts for w in e]
        dirs = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in leaves]
        eps = 1e-6

        def loss_at(s):
            ls = [t + s * d for t, d in zip(leaves, dirs)]
            yy, aa, ii = ref.moe_forward(ls[0], ls[1], [ls[2 + 3 * e: 5 + 3 * e] for e in range(E)], k, norm,
                                         AUX_COEF)
            assert torch.equal(ii, idx)
            return ((yy * r).sum() + aa).item()
        fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
        an = sum((gr * d).sum().item() for gr, d in zip(grads, dirs))
        d_fd = abs(fd - an) / abs(an)
        print(f"{case:12} {str(used):14} {d_y:9.1e} {d_aux:10.1e} {d_g:10.1e} {d_fd:10.1e} {aux.item():10.4e}")
        if d_y > 1e-12 or d_aux > 1e-6 or d_g > 1e-6 or d_fd > 1e-6:
            failures.append(f"{case}: y {d_y:.1e}, aux {d_aux:.1e}, grads {d_g:.1e}, finite differences {d_fd:.1e}")
        if unused is not None:
            zero = all(not grads[2 + 3 * unused + j].any() for j in range(3))
            if unused in used or not zero:
                failures.append(f"{case}: expert {unused} must get no token and zero gradients")
        elif used != list(range(E)):
            failures.append(f"{case}: experts {used} used; all {E} must be")
        t = {"x": x, "r": r, "router": router}
        for e in range(E):
            for j, w in enumerate(("gate", "up", "down")):
                t[f"experts.{e}.{w}"] = experts[e][j]
        t["y"] = y
        t["aux"] = aux.reshape(1)
        t["topk_idx"] = idx.to(torch.int64)
        for n, gr in zip(names, grads):
            t["grad." + n] = gr
        outputs[case] = (t, {"top_k": str(k), "norm_topk_prob": str(norm).lower(), "aux_coef": str(AUX_COEF)})
    if failures:
        sys.exit("checks failed, nothing written:\n  " + "\n  ".join(failures))
    os.makedirs(args.out, exist_ok=True)
    for case, (t, meta) in outputs.items():
        ref.save_safetensors(os.path.join(args.out, f"{case}.safetensors"), t, meta)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out} ({len(outputs)} files, {size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
