"""Profile the paper authors' PyTorch GMF epoch (github.com/wangyu-ustc/DeCA), unedited.

    DECA_DIR=/path/to/DeCA-checkout SKIP_TEST=1 [OMP_NUM_THREADS=1] \
        /path/to/venv-with-torch/bin/python benchmarks/profile_authors_gmf.py \
        {normal|DeCA} EPOCHS {timers|cprofile|torchprof} [OUT] [--page FILE]

Not part of dprec and not run by the tests: it needs a checkout of the authors' code (the
README says which commit; their Modcloth files are in it) and torch in its own environment.
It reproduces `python main.py --model GMF --dataset modcloth [--method DeCA] --default` with
EPOCHS epochs, wrapping their functions, Adam steps, backward and data loader in wall-clock
timers at run time (their files are not changed), and prints each part's seconds and share of
the training epochs. MODE cprofile / torchprof also writes OUT.pstats / OUT.torchprof.txt.
SKIP_TEST=1 skips their final test (it hard-codes device 'cuda'; otherwise run on the CPU).
`--page FILE` (relative to where it was started) also writes the printed output as a generated
page (`page_option.py`); it needs dprec importable in that environment.
"""

# ruff: noqa: E402  (their modules import only after sys.path points at their checkout)
import collections
import contextlib
import json
import os
import sys
import time

from page_option import printed_page, script_command

CWD = os.getcwd()  # OUT and --page are relative to where it was started
COMMAND = script_command()
PAGE = None
if "--page" in sys.argv:  # taken out before the positional arguments are read
    at = sys.argv.index("--page")
    PAGE = os.path.join(CWD, sys.argv[at + 1])
    del sys.argv[at : at + 2]
# Everything printed from here on is the page's body; the stack is closed (and the page
# written) only at the script's normal end.
PAGE_OUTPUT = contextlib.ExitStack()
PAGE_OUTPUT.enter_context(printed_page(PAGE, "The authors' GMF epoch", COMMAND))
AUTH = os.environ["DECA_DIR"]
sys.path.insert(0, AUTH)
os.chdir(AUTH)

import torch
import torch.optim as optim
import torch.optim.optimizer as optim_mod
import torch.utils.data as tud

method = sys.argv[1]
EPOCHS = int(sys.argv[2])
MODE = sys.argv[3]
OUT = os.path.join(CWD, sys.argv[4] if len(sys.argv) > 4 else "authors-gmf-profile")
method = None if method == "normal" else method

import data_utils as D
import evaluate as E
import main as M
import train as T
from utils import get_top_k

from configs import get_config

acc = collections.defaultdict(float)
cnt = collections.defaultdict(int)


def timed(name, fn):
    def w(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[name] += time.perf_counter() - t0
            cnt[name] += 1

    return w


# ---- wrappers (no change to their files) ----
T.TrainModel.sample_neg_items = timed(
    "neg_sampling(sample_neg_items)", T.TrainModel.sample_neg_items
)
T.TrainModel.forward = timed("TrainModel.forward(incl. neg sampling)", T.TrainModel.forward)
T.TrainModel.KL_loss = timed("KL_loss(aux model fwd)", T.TrainModel.KL_loss)
T.TrainModel.positive_loss_function = timed(
    "pos_loss_fn(h models fwd)", T.TrainModel.positive_loss_function
)
T.TrainModel.negative_loss_function = timed(
    "neg_loss_fn(h models fwd)", T.TrainModel.negative_loss_function
)
T.TrainModel.eval = timed("valid eval(TrainModel.eval)", T.TrainModel.eval)
torch.Tensor.backward = timed("backward", torch.Tensor.backward)
torch.nn.Module.zero_grad = timed("zero_grad", torch.nn.Module.zero_grad)
optim.Optimizer.zero_grad = timed("zero_grad", optim.Optimizer.zero_grad)
_step_t0 = {}


def _pre(opt, a, k):
    _step_t0[id(opt)] = time.perf_counter()


def _post(opt, a, k):
    acc["Adam.step (all optimizers)"] += time.perf_counter() - _step_t0.pop(id(opt))
    cnt["Adam.step (all optimizers)"] += 1


optim_mod.register_optimizer_step_pre_hook(_pre)
optim_mod.register_optimizer_step_post_hook(_post)
_orig_next = tud.dataloader._BaseDataLoaderIter.__next__
tud.dataloader._BaseDataLoaderIter.__next__ = timed("DataLoader next (getitem+collate)", _orig_next)
D.NCFData.ng_sample = timed("NCFData.ng_sample", D.NCFData.ng_sample)
D.load_all = timed("load_all (data loading)", D.load_all)
_orig_test = E.test_all_users


def test_cpu(model, batch_size, item_num, test_data_pos, user_pos, top_k, device="cuda"):
    if os.environ.get("SKIP_TEST"):
        return [[0.0] * 4] * 4
    return _orig_test(model, batch_size, item_num, test_data_pos, user_pos, top_k, device="cpu")


E.test_all_users = timed("final test (test_all_users, cpu)", test_cpu)
E.compute_acc = timed("  of which compute_acc", E.compute_acc)

# epoch boundaries: each epoch calls iter(train_loader); the valid loader is also iterated in eval
epoch_marks = []
_orig_iter = tud.DataLoader.__iter__


def _iter(self):
    if self.dataset.is_training == 0:  # train_dataset (NSR=0, is_training=0) in main.py:38
        epoch_marks.append(time.perf_counter())
    return _orig_iter(self)


tud.DataLoader.__iter__ = _iter
CAP = {}
_orig_train = T.TrainModel.train


def _train(self, train_loader, valid_loader, *a, **k):
    CAP["tm"] = self
    CAP["valid_loader"] = valid_loader
    return _orig_train(self, train_loader, valid_loader, *a, **k)


T.TrainModel.train = _train
test_start = []
_t2 = E.test_all_users


def _t3(*a, **k):
    test_start.append(time.perf_counter())
    return _t2(*a, **k)


E.test_all_users = _t3

# ---- param exactly as main.py --default builds it ----
param = get_config(model="GMF", dataset="modcloth", method=method)
param = dict(param)
param["method"] = method
param["top_k"] = get_top_k("modcloth")
param["seed"] = 2020
param["denoise_type"] = "both"
param["datadir"] = "./data"
param["folder"] = os.path.abspath(OUT + "-output")
param["model"] = "GMF"
param["dataset"] = "modcloth"
param["save_model"] = 0
param["device"] = "cuda" if torch.cuda.is_available() else "cpu"
preset_epochs = param["epochs"]
param["epochs"] = EPOCHS
print("param:", param, "(preset epochs:", preset_epochs, ")")
print(
    "torch",
    torch.__version__,
    "threads",
    torch.get_num_threads(),
    "interop",
    torch.get_num_interop_threads(),
)

prof = None
if MODE == "cprofile":
    import cProfile

    prof = cProfile.Profile()
tp = None
if MODE == "torchprof":
    tp = torch.autograd.profiler.profile(record_shapes=False)

print("loadavg at start", os.getloadavg())
t_start = time.perf_counter()
if prof:
    prof.enable()
if tp:
    tp.__enter__()
res = M.main(param)
if tp:
    tp.__exit__(None, None, None)
if prof:
    prof.disable()
t_end = time.perf_counter()

print("loadavg at end", os.getloadavg())
if MODE == "timers":
    tm = CAP["tm"]
    for _i in range(2):
        t0 = time.perf_counter()
        tm.eval(tm.model, CAP["valid_loader"], 0)
        seconds = time.perf_counter() - t0
        print(f"one valid eval (TrainModel.eval, every {tm.eval_freq} iters): {seconds:.3f} s")
    acc["valid eval(TrainModel.eval)"] = 0.0
    nparam = {n: p.numel() for n, p in tm.model.named_parameters()}
    print("GMF model params:", nparam, "total", sum(nparam.values()))
    for nm in ["aux_model", "h_model_1", "h_model_2"]:
        print(
            nm, type(getattr(tm, nm)).__name__, sum(p.numel() for p in getattr(tm, nm).parameters())
        )
    g = {
        n: (p.grad is not None and float((p.grad != 0).float().mean()))
        for n, p in tm.model.named_parameters()
    }
    print("fraction of nonzero grad entries after last step:", g)
ends = epoch_marks[1:] + [test_start[0]]
epoch_secs = [e - s for s, e in zip(epoch_marks, ends, strict=False)]
print("RESULT metrics:", res)
print("epoch seconds:", [f"{x:.2f}" for x in epoch_secs])
tot_ep = sum(epoch_secs)
print(
    f"total wall {t_end - t_start:.2f} s; training epochs total {tot_ep:.2f} s; "
    f"before first epoch {epoch_marks[0] - t_start:.2f} s; final test {t_end - test_start[0]:.2f} s"
)
print(f"{'timer':45s} {'seconds':>10s} {'calls':>8s} {'% of epochs':>8s}")
for k in sorted(acc, key=lambda k: -acc[k]):
    print(f"{k:45s} {acc[k]:10.3f} {cnt[k]:8d} {100 * acc[k] / tot_ep:8.1f}")
# derived
fwd_model = acc["TrainModel.forward(incl. neg sampling)"] - acc["neg_sampling(sample_neg_items)"]
share = 100 * fwd_model / tot_ep
print(f"derived: GMF forward (TrainModel.forward minus sampling) {fwd_model:.3f} s ({share:.1f}%)")
train_timed = sum(
    acc[k]
    for k in [
        "TrainModel.forward(incl. neg sampling)",
        "KL_loss(aux model fwd)",
        "pos_loss_fn(h models fwd)",
        "neg_loss_fn(h models fwd)",
        "backward",
        "zero_grad",
        "Adam.step (all optimizers)",
        "DataLoader next (getitem+collate)",
    ]
)
rest = tot_ep - train_timed
print(
    "derived: rest of epoch (BCE/KL arithmetic, L2 over all params, .to(), print) "
    f"{rest:.3f} s ({100 * rest / tot_ep:.1f}%)"
)
with open(OUT + ".json", "w") as handle:
    json.dump(
        {"epoch_secs": epoch_secs, "acc": acc, "cnt": cnt, "total": t_end - t_start},
        handle,
        indent=1,
    )
if prof:
    prof.dump_stats(OUT + ".pstats")
if tp:
    with open(OUT + ".torchprof.txt", "w") as f:
        f.write(tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
    print(tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
PAGE_OUTPUT.close()
