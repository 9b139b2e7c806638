#!/usr/bin/env python3
"""score/lm_eval_dllm.py — lm-evaluation-harness model type "dllm".

Registers `dllm` with lm-eval (EleutherAI's lm-evaluation-harness, PyPI
package `lm-eval`) and answers its requests with the dllm programs, run as
pipelines that talk msgpack streams over pipes:

  loglikelihood          JSONL {"prompt": context, "response": continuation}
                         | dllm-tok -t CKPT --jsonl | dllm-score -m CKPT
                         -> scores stream: ll = -nll (exact chain rule with
                         causal=True, LLaDA's conditional estimator with
                         mc samples otherwise)
  loglikelihood_rolling  causal: the string given the prefix token (as lm-eval's
                         HF model); diffusion: the Monte-Carlo ELBO of the
                         string's tokens (a lower-bound estimate of log p)
  generate_until         JSONL {"text": context} | dllm-tok | dllm-sample
                         | dllm-tok -d --jsonl, cut at the first `until` string

The bridge tokenises nothing itself (dllm-tok does, with CKPT/tokenizer.json,
prompt and response encoded separately as dllm-score --task does) and needs
nothing but the Python standard library and lm-eval: the scores stream is
read by the small msgpack decoder below.  Every record carries a "req" key
(dllm programs carry unknown keys through), so answers are matched to
requests by index, not by order.

Use (lm-eval's own `lm_eval` command cannot import this file, so run the
file itself: it registers "dllm" and then runs lm-eval's command line, with
every lm-eval flag; --only_include_path, the one flag of its own, skips
indexing lm-eval's ~14000 built-in task files, about 20 s):

    HF_DATASETS_OFFLINE=1 python score/lm_eval_dllm.py --model dllm \\
        --model_args ckpt=demo-out/stories260K,causal=True \\
        --tasks dllm_stories_mc --include_path tests/data/lm_eval --only_include_path

or from Python: `import lm_eval_dllm` (with score/ on sys.path), then
`lm_eval.simple_evaluate(model="dllm", model_args="ckpt=...")`.

Model arguments (--model_args k=v,...):
  ckpt=DIR          checkpoint directory (required)
  causal=BOOL       exact chain-rule scoring and left-to-right sampling [False]
  mc=N              dllm-score --mc (diffusion Monte-Carlo samples) [128]
  seed=S            dllm-score / dllm-sample --seed [0]
  add_bos_token=BOOL  start every context with the BOS token, as lm-eval's hf
                    model argument of that name [the tokenizer's setting:
                    tokenizer_config.json's add_bos_token, else whether
                    tokenizer.json's post-processor puts the BOS token first,
                    which is what an HF tokenizer's encode() does]
  cfg=W             dllm-score --cfg (diffusion conditional only) [0: off]
  gen_length=G      dllm-sample -n (default: the task's max_gen_toks, else 256)
  steps=S           dllm-sample -s [0: G]
  block_length=B    dllm-sample --block-length [0: G]
  temperature=T     dllm-sample -t when the task asks for sampling [task's, else 0]
  threads=N         -j for dllm-score and dllm-sample [0: all]
  prefix=TEXT       context used for an empty context (default: the text of the
                    checkpoint's BOS token, else its EOS token)
  bin=DIR           directory with dllm-tok / dllm-score / dllm-sample (default:
                    ../bin next to this file, else $PATH)
  dllm_device=D     --device for dllm-score and dllm-sample: cpu or cuda [their
                    default, cpu]; lm-eval's own --device is ignored (it defaults
                    to cuda even on machines without one)
  batch_size        (lm-eval's --batch_size) dllm-sample -b when > 1

Conventions and limits:
  * Tokenisation as dllm-score --task: context and continuation encoded
    separately; when " a" is not a single token (SentencePiece-style
    tokenizers, whose normalizer adds the word-start marker itself: Llama-2,
    the converted stories260K) one leading space of the continuation is
    dropped first, so its marker comes from the tokenizer (llm-foundry's rule).
    This is not lm-eval's HF rule (encode context + continuation whole, then
    split), so numbers can differ from an HF run of the same model where the
    two tokenisations differ.
  * is_greedy: the scores stream's "greedy" field (dllm-score --greedy,
    sc_greedy_match: causal argmax at every position given the true prefix;
    diffusion one forward with the whole continuation masked).
  * No rolling windows: a request longer than the model's context is an error
    from dllm-score (exit 1), reported as RuntimeError with its stderr.
  * generate_until decodes the generated ids alone (as lm-eval's HF model
    does), so a SentencePiece tokenizer's leading space is not in the text;
    special tokens (EOS) are dropped; dllm-sample stops at EOS by itself.
  * BOS (add_bos_token, lm-eval's hf rule): a context that already starts with
    the BOS token's text gets no second one; an empty context is the prefix
    alone (with add_bos_token and the default prefix: just BOS).  dllm-tok
    --bos adds the id, so the numbers equal dllm-score --task --bos.
    loglikelihood_rolling ignores it (its context is the prefix token, as hf).
  * Diffusion estimates are random, keyed by --seed and the request's content
    (dllm-score --rng-key content: a hash of the context's token ids), never
    by its position, so lm-eval's reordering changes nothing and the numbers
    equal dllm-score --task's (which keys the same way).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

__all__ = ["DllmLM", "unpackb_stream"]


# ---------------------------------------------------------------- msgpack
class MsgpackError(ValueError):
    pass


def _unpack(b, i):
    """Decode one msgpack object of bytes b at offset i -> (obj, next offset).
    Every type but ext (returned as (code, bytes)); map keys as decoded."""
    if i >= len(b):
        raise MsgpackError("truncated msgpack data")
    c = b[i]
    i += 1
    if c <= 0x7F:
        return c, i
    if c >= 0xE0:
        return c - 0x100, i
    if 0x80 <= c <= 0x8F:
        return _map(b, i, c & 0x0F)
    if 0x90 <= c <= 0x9F:
        return _array(b, i, c & 0x0F)
    if 0xA0 <= c <= 0xBF:
        return _raw(b, i, c & 0x1F, True)
    if c == 0xC0:
        return None, i
    if c == 0xC2:
        return False, i
    if c == 0xC3:
        return True, i
    fixed = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
             0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if c in fixed:
        f = fixed[c]
        n = struct.calcsize(f)
        if i + n > len(b):
            raise MsgpackError("truncated msgpack data")
        return struct.unpack_from(f, b, i)[0], i + n
    lens = {0xC4: (">B", False), 0xC5: (">H", False), 0xC6: (">I", False),
            0xD9: (">B", True), 0xDA: (">H", True), 0xDB: (">I", True),
            0xDC: (">H", "a"), 0xDD: (">I", "a"), 0xDE: (">H", "m"), 0xDF: (">I", "m"),
            0xC7: (">B", "x"), 0xC8: (">H", "x"), 0xC9: (">I", "x")}
    if c in lens:
        f, kind = lens[c]
        n = struct.calcsize(f)
        if i + n > len(b):
            raise MsgpackError("truncated msgpack data")
        k = struct.unpack_from(f, b, i)[0]
        i += n
        if kind == "a":
            return _array(b, i, k)
        if kind == "m":
            return _map(b, i, k)
        if kind == "x":
            return _ext(b, i, k)
        return _raw(b, i, k, kind)
    if 0xD4 <= c <= 0xD8:
        return _ext(b, i, 1 << (c - 0xD4))
    raise MsgpackError("bad msgpack byte 0x%02x" % c)


def _raw(b, i, n, text):
    if i + n > len(b):
        raise MsgpackError("truncated msgpack data")
    s = bytes(b[i:i + n])
    return (s.decode("utf-8", "replace") if text else s), i + n


def _ext(b, i, n):
    if i + 1 + n > len(b):
        raise MsgpackError("truncated msgpack data")
    return (struct.unpack_from(">b", b, i)[0], bytes(b[i + 1:i + 1 + n])), i + 1 + n


def _array(b, i, n):
    out = []
    for _ in range(n):
        v, i = _unpack(b, i)
        out.append(v)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = _unpack(b, i)
        v, i = _unpack(b, i)
        if isinstance(k, (list, dict)):
            k = repr(k)
        out[k] = v
    return out, i


def unpackb_stream(b):
    """All msgpack objects of the bytes b, in order (a dllm stream)."""
    if b[:4] == b"\x28\xb5\x2f\xfd":
        raise MsgpackError("zstd-compressed stream (the bridge reads plain msgpack)")
    out, i = [], 0
    while i < len(b):
        v, i = _unpack(b, i)
        out.append(v)
    return out


def records(b):
    """The records of a dllm stream (headers, maps with key "dllm", dropped)."""
    return [r for r in unpackb_stream(b) if not (isinstance(r, dict) and "dllm" in r)]


# ---------------------------------------------------------------- helpers
def _bool(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", "", "none"):
        return False
    raise ValueError("not a boolean: %r" % (v,))


def _find_bin(bindir, name):
    if bindir:
        p = os.path.join(bindir, name)
        if not os.access(p, os.X_OK):
            raise FileNotFoundError("%s not found in bin=%s (run make)" % (name, bindir))
        return p
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin", name)
    if os.access(here, os.X_OK):
        return os.path.normpath(here)
    p = shutil.which(name)
    if not p:
        raise FileNotFoundError("%s not found next to %s nor on PATH (run make, or bin=DIR)"
                                % (name, __file__))
    return p


def _special_text(ckpt, tid):
    """Text of token id tid in CKPT/tokenizer.json (added tokens, then the vocab)."""
    try:
        with open(os.path.join(ckpt, "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
    except (OSError, ValueError):
        return None
    for a in tok.get("added_tokens") or []:
        if a.get("id") == tid:
            return a.get("content")
    vocab = (tok.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):
        for k, v in vocab.items():
            if v == tid:
                return k
    return None


def _tokenizer_adds_bos(ckpt):
    """The tokenizer's own BOS setting, as an HF tokenizer loaded from CKPT
    applies it in encode(): tokenizer_config.json's add_bos_token when it has
    one, else True when tokenizer.json's post-processor (TemplateProcessing,
    possibly inside a Sequence) starts its "single" template with a special
    token (Llama-2's "<s> $A"), else False."""
    try:
        with open(os.path.join(ckpt, "tokenizer_config.json"), encoding="utf-8") as f:
            tc = json.load(f)
        if isinstance(tc.get("add_bos_token"), bool):
            return tc["add_bos_token"]
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(ckpt, "tokenizer.json"), encoding="utf-8") as f:
            pp = json.load(f).get("post_processor")
    except (OSError, ValueError):
        return False
    procs = (pp or {}).get("processors") if (pp or {}).get("type") == "Sequence" else [pp]
    for p in procs or []:
        if isinstance(p, dict) and p.get("type") == "TemplateProcessing":
            single = p.get("single") or []
            return bool(single) and isinstance(single[0], dict) and "SpecialToken" in single[0]
    return False


def _run_pipeline(cmds, stdin_path, what):
    """Run cmds[0] < stdin_path | cmds[1] | ... ; return the last one's stdout
    bytes.  Stderr of each goes to a temp file (no pipe can fill up and
    deadlock); a non-zero exit raises RuntimeError with that stderr."""
    errs, procs = [], []
    try:
        prev = open(stdin_path, "rb")
        for k, cmd in enumerate(cmds):
            e = tempfile.TemporaryFile()
            errs.append(e)
            p = subprocess.Popen(cmd, stdin=prev, stdout=subprocess.PIPE, stderr=e)
            prev.close()
            procs.append(p)
            prev = p.stdout
        out = procs[-1].stdout.read()
        procs[-1].stdout.close()
        rcs = [p.wait() for p in procs]
        bad = []
        for cmd, rc, e in zip(cmds, rcs, errs):
            if rc != 0:   # every failure (an upstream one may be a closed pipe)
                e.seek(0)
                msg = e.read().decode("utf-8", "replace").strip()
                bad.append("%s exited %d:\n%s" % (" ".join(cmd), rc, msg))
        if bad:
            raise RuntimeError("dllm bridge (%s): %s" % (what, "\n".join(bad)))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for e in errs:
            e.close()


def _write_jsonl(rows):
    fd, path = tempfile.mkstemp(prefix="dllm-lm-eval.", suffix=".jsonl")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False))
            f.write("\n")
    return path


def _by_req(recs, n, what):
    """Records keyed by their "req" index; every one of 0..n-1 exactly once."""
    out = [None] * n
    for r in recs:
        k = r.get("req") if isinstance(r, dict) else None
        if not isinstance(k, int) or not 0 <= k < n or out[k] is not None:
            raise RuntimeError("dllm bridge (%s): unexpected record %r" % (what, r))
        out[k] = r
    if any(r is None for r in out):
        raise RuntimeError("dllm bridge (%s): %d of %d answers missing"
                           % (what, sum(r is None for r in out), n))
    return out


def _cut(text, until):
    for s in until:
        if s:
            k = text.find(s)
            if k >= 0:
                text = text[:k]
    return text


# ---------------------------------------------------------------- the model
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402


@register_model("dllm")
class DllmLM(LM):
    """lm-eval model answered by dllm-score / dllm-sample (see the module text)."""

    def __init__(self, ckpt=None, causal=False, mc=128, seed=0, cfg=0, add_bos_token=None, gen_length=None,
                 steps=0, block_length=0, temperature=None, threads=0, prefix=None,
                 bin=None, dllm_device=None, batch_size=None, max_batch_size=None, device=None, **unused):
        super().__init__()
        if not ckpt:
            raise ValueError("dllm: model_args needs ckpt=DIR (a dllm checkpoint directory)")
        if unused:
            raise ValueError("dllm: unknown model_args: %s" % ", ".join(sorted(unused)))
        if not os.path.isfile(os.path.join(str(ckpt), "config.json")):
            raise FileNotFoundError("dllm: %s/config.json not found" % ckpt)
        self.ckpt = str(ckpt)
        self.causal = _bool(causal)
        self.mc = int(mc)
        self.seed = int(seed)
        self.cfg = float(cfg)
        self.gen_length = int(gen_length) if gen_length not in (None, "") else None
        self.steps = int(steps)
        self.block_length = int(block_length)
        self.temperature = float(temperature) if temperature not in (None, "") else None
        self.threads = int(threads)
        bindir = str(bin) if bin else None
        self.tok = _find_bin(bindir, "dllm-tok")
        self.score = _find_bin(bindir, "dllm-score")
        self.sample = None
        try:
            self.sample = _find_bin(bindir, "dllm-sample")
        except FileNotFoundError:
            pass  # only generate_until needs it
        self.batch = None   # lm-eval's default 1 keeps dllm-sample's own default
        if batch_size not in (None, "", "auto"):
            try:
                self.batch = int(str(batch_size).split(":")[0])
            except ValueError:
                pass
            if self.batch is not None and self.batch <= 1:
                self.batch = None
        # lm-eval's --device defaults to "cuda" even on machines without one,
        # so it is ignored: dllm_device=cpu|cuda chooses the dllm device.
        self.dev = None
        if dllm_device:
            d = str(dllm_device)
            if d not in ("cpu", "cuda"):
                raise ValueError("dllm: dllm_device=%s (cpu or cuda)" % d)
            self.dev = d
        with open(os.path.join(self.ckpt, "config.json"), encoding="utf-8") as f:
            conf = json.load(f)
        if prefix is None:
            for key in ("bos_token_id", "eos_token_id"):
                tid = conf.get(key)
                if isinstance(tid, list):
                    tid = tid[0] if tid else None
                if isinstance(tid, int):
                    prefix = _special_text(self.ckpt, tid)
                    if prefix:
                        break
        self.prefix = prefix or ""
        self._drop = None
        self.add_bos = (_bool(add_bos_token) if add_bos_token not in (None, "")
                        else _tokenizer_adds_bos(self.ckpt))
        self.bos_text = None
        if self.add_bos:
            tid = conf.get("bos_token_id")
            self.bos_text = _special_text(self.ckpt, tid) if isinstance(tid, int) else None
            if not self.bos_text:
                raise ValueError("dllm: add_bos_token=True but %s has no BOS token (bos_token_id)" % self.ckpt)

    # common flags of dllm-score and dllm-sample
    def _runtime(self):
        a = []
        if self.threads:
            a += ["-j", str(self.threads)]
        if self.dev:
            a += ["--device", self.dev]
        return a

    def _tok_cmd(self, bos=False):
        return [self.tok, "-t", self.ckpt, "--jsonl", "-q"] + (["--bos"] if bos else [])

    def _context(self, ctx):
        """The context text as dllm-tok gets it: the prefix for an empty one;
        with add_bos_token a leading BOS text is removed, as dllm-tok --bos puts
        the id back (lm-eval's hf adds no BOS to a context that has one)."""
        ctx = ctx if ctx else self.prefix
        if self.add_bos and ctx.startswith(self.bos_text):
            ctx = ctx[len(self.bos_text):]
        return ctx

    def _score_cmd(self):
        cmd = [self.score, "-m", self.ckpt, "-q", "--seed", str(self.seed), "--rng-key", "content"]
        if self.causal:
            cmd.append("--causal")
        else:
            cmd += ["--mc", str(self.mc)]
        return cmd + self._runtime()

    def _scores(self, rows, what, greedy=False, bos=False):
        """rows: JSONL records for dllm-tok (each with "req") -> score records;
        greedy: ask dllm-score for the "greedy" field (is_greedy); bos:
        dllm-tok --bos (the BOS id first)."""
        path = _write_jsonl(rows)
        try:
            out = _run_pipeline([self._tok_cmd(bos),
                                 self._score_cmd() + (["--greedy"] if greedy else []) + ["-"]], path, what)
        finally:
            os.unlink(path)
        return _by_req(records(out), len(rows), what)

    def _drop_space(self):
        """1 when " a" is not one token (a tokenizer that marks word starts
        itself, SentencePiece-style): then, as dllm-score --task does, one
        leading space of a continuation is dropped before encoding."""
        if self._drop is None:
            path = _write_jsonl([{"text": " a"}])
            try:
                out = _run_pipeline([[self.tok, "-t", self.ckpt, "--jsonl", "-q"]], path, "tokenizer")
            finally:
                os.unlink(path)
            recs = records(out)
            if len(recs) != 1 or not isinstance(recs[0].get("ids"), bytes):
                raise RuntimeError("dllm bridge: dllm-tok wrote %r for \" a\"" % (recs,))
            self._drop = len(recs[0]["ids"]) // 4 != 1
        return self._drop

    # -------------------------------------------------------- lm-eval API
    def loglikelihood(self, requests, disable_tqdm=False):
        args = [r.args for r in requests]
        drop = self._drop_space()
        rows = []
        for k, (ctx, cont) in enumerate(args):
            if not cont:
                continue
            if drop and cont[0] == " " and len(cont) > 1:
                cont = cont[1:]
            rows.append({"prompt": self._context(ctx), "response": cont, "req": len(rows)})
        recs = self._scores(rows, "loglikelihood", greedy=True, bos=self.add_bos) if rows else []
        res, j = [], 0
        for ctx, cont in args:
            if not cont:
                res.append((0.0, True))
                continue
            r = recs[j]
            j += 1
            ll = -float(r["nll"])
            greedy = bool(r.get("greedy", False))
            res.append((ll, greedy))
            self.cache_hook.add_partial("loglikelihood", (ctx, cont), (ll, greedy))
        return res

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        strs = [r.args[0] for r in requests]
        rows = []
        for k, s in enumerate(strs):
            if not s:
                continue
            if self.causal:
                rows.append({"prompt": self.prefix, "response": s, "req": len(rows)})
            else:
                rows.append({"text": s, "req": len(rows)})
        recs = self._scores(rows, "loglikelihood_rolling") if rows else []
        res, j = [], 0
        for s in strs:
            if not s:
                res.append(0.0)
                continue
            ll = -float(recs[j]["nll"])
            j += 1
            res.append(ll)
            self.cache_hook.add_partial("loglikelihood_rolling", (s,), ll)
        return res

    def generate_until(self, requests, disable_tqdm=False):
        if not self.sample:
            raise FileNotFoundError("dllm: dllm-sample not found (generate_until needs it)")
        groups = {}
        for k, r in enumerate(requests):
            ctx, kw = r.args
            key = json.dumps(kw, sort_keys=True, default=str)
            groups.setdefault(key, []).append((k, ctx, kw))
        res = [None] * len(requests)
        for items in groups.values():
            kw = dict(items[0][2] or {})
            until = kw.get("until") or []
            if isinstance(until, str):
                until = [until]
            g = self.gen_length or int(kw.get("max_gen_toks") or 256)
            temp = 0.0
            if _bool(kw.get("do_sample", False)) or self.temperature is not None:
                temp = float(self.temperature if self.temperature is not None
                             else kw.get("temperature", 0.0) or 0.0)
            cmd = [self.sample, "-m", self.ckpt, "-q", "-n", str(g), "--seed", str(self.seed)]
            if self.steps:
                cmd += ["-s", str(self.steps)]
            if self.block_length:
                cmd += ["--block-length", str(self.block_length)]
            if temp > 0:
                cmd += ["-t", repr(temp)]
            if self.causal:
                cmd.append("--causal")
            if self.batch:
                cmd += ["-b", str(self.batch)]
            cmd += self._runtime() + ["-"]
            rows = [{"text": self._context(ctx), "req": j}
                    for j, (k, ctx, _) in enumerate(items)]
            path = _write_jsonl(rows)
            try:
                out = _run_pipeline([self._tok_cmd(self.add_bos), cmd,
                                     [self.tok, "-d", "-t", self.ckpt, "--jsonl",
                                      "--skip-special", "-q"]], path, "generate_until")
            finally:
                os.unlink(path)
            recs = [json.loads(l) for l in out.decode("utf-8", "replace").splitlines() if l.strip()]
            recs = _by_req(recs, len(rows), "generate_until")
            for (k, ctx, kw0), r in zip(items, recs):
                text = _cut(r.get("response", ""), until)
                res[k] = text
                self.cache_hook.add_partial("generate_until", (ctx, kw0), text)
        return res


def main(argv=None):
    """Run lm-eval's command line with "dllm" registered.  One flag of its own:
    --only_include_path  index only the --include_path tasks, not lm-eval's
                         thousands of built-in YAML files (about 20 s saved)."""
    import lm_eval.models  # noqa: F401  (lazy entries for lm-eval's own models)
    from lm_eval.__main__ import cli_evaluate
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--only_include_path" in argv:
        argv = [a for a in argv if a != "--only_include_path"]
        import lm_eval.tasks
        tm = lm_eval.tasks.TaskManager
        init = tm.__init__

        def init_local(self, *a, **kw):
            kw["include_defaults"] = False
            init(self, *a, **kw)
        tm.__init__ = init_local
    sys.argv = [sys.argv[0]] + argv
    cli_evaluate()


if __name__ == "__main__":
    main()
