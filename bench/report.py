#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Charts and the HTML report of one benchmark run (a hvsim-bench/1 JSON file).

bench/run.py calls write() after a run; on its own it redraws them from a
stored file:

    /usr/bin/python3 bench/report.py build/bench/latest.json [OUTDIR]

Charts (matplotlib, Agg backend, so no display is needed): throughput against
message size (a panel per direction, a line per transport, min..max as error
bars, memcpy as the ceiling), latency percentiles (a bar group per percentile,
a bar per transport) and scale (aggregate throughput and memory per connection
against concurrent streams).
"""
import html
import json
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

STYLE = {"hvsim": ("tab:blue", "-", "o"), "af_unix": ("tab:orange", "--", "s"), "tcp": ("tab:green", ":", "^"),
         "vsock": ("tab:blue", "-", "o")}


def _style(t):
    return STYLE.get(t, ("tab:gray", "-.", "x"))


def _transports(doc):
    return [doc["subject"], "af_unix", "tcp"]


def _size_label(n):
    return f"{n // 1048576} MiB" if n >= 1048576 else f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def throughput_chart(doc):
    figs = doc["figures"]
    dirs = [d for d in ("h2g", "g2h", "both") if any(k.startswith(f"throughput.{d}.") for k in figs)]
    if not dirs:
        return None
    fig, axes = plt.subplots(1, len(dirs), figsize=(5.2 * len(dirs), 4.4), squeeze=False, sharey=True)
    memcpy = figs.get("memcpy", {}).get("values", {}).get("memcpy", {}).get("median")
    titles = {"h2g": "host -> guest", "g2h": "guest -> host", "both": "both directions at once"}
    for ax, d in zip(axes[0], dirs):
        names = sorted((k for k in figs if k.startswith(f"throughput.{d}.")), key=lambda k: int(k.split(".")[2]))
        sizes = [int(k.split(".")[2]) for k in names]
        for t in _transports(doc):
            pts = [(s, figs[k]["values"][t]) for s, k in zip(sizes, names) if t in figs[k]["values"]]
            if not pts:
                continue
            color, ls, mk = _style(t)
            xs = [p[0] for p in pts]
            ys = [p[1]["median"] for p in pts]
            err = [[p[1]["median"] - p[1]["min"] for p in pts], [p[1]["max"] - p[1]["median"] for p in pts]]
            ax.errorbar(xs, ys, yerr=err, color=color, linestyle=ls, marker=mk, capsize=3, label=t)
        if memcpy:
            ax.axhline(memcpy, color="tab:red", linestyle="-.", linewidth=1, label="memcpy 4 MiB")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([_size_label(s) for s in sizes], rotation=30)
        ax.set_title(titles[d])
        ax.set_xlabel("message size")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("GB/s (median, min..max)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Stream throughput: {doc['subject']} beside its same-run baselines ({doc['target']})")
    return fig


def latency_chart(doc):
    figs = doc["figures"]
    sizes = sorted({int(k.split(".")[1]) for k in figs if k.startswith("rtt.")})
    if not sizes:
        return None
    pcts = ["p50", "p99", "p99.9", "max"]
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.6 * len(sizes), 4.4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        ts = [t for t in _transports(doc) if f"rtt.{size}.p50" in figs and t in figs[f"rtt.{size}.p50"]["values"]]
        width = 0.8 / max(len(ts), 1)
        for i, t in enumerate(ts):
            xs, ys, lo, hi = [], [], [], []
            for j, p in enumerate(pcts):
                f = figs.get(f"rtt.{size}.{p}")
                if f is None or t not in f["values"]:
                    continue
                v = f["values"][t]
                xs.append(j + (i - (len(ts) - 1) / 2) * width)
                ys.append(v["median"])
                lo.append(v["median"] - v["min"])
                hi.append(v["max"] - v["median"])
            color, _, _ = _style(t)
            ax.bar(xs, ys, width, yerr=[lo, hi], color=color, capsize=2, label=t, alpha=0.85)
        ax.set_xticks(range(len(pcts)))
        ax.set_xticklabels(pcts)
        ax.set_yscale("log")
        ax.set_ylabel("round trip, us (median of rounds, min..max)")
        ax.set_title(f"round trip, {_size_label(size)} messages")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def scale_chart(doc):
    figs = doc["figures"]
    ns = sorted({int(k.split(".")[1]) for k in figs if k.startswith("scale.") and k.endswith(".throughput")})
    if not ns:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for t in _transports(doc):
        color, ls, mk = _style(t)
        for ax, what in zip(axes, ("throughput", "client_mem")):
            pts = [(n, figs[f"scale.{n}.{what}"]["values"].get(t)) for n in ns if f"scale.{n}.{what}" in figs]
            pts = [(n, v) for n, v in pts if v]
            if pts:
                ax.plot([p[0] for p in pts], [p[1]["median"] for p in pts], color=color, linestyle=ls, marker=mk,
                        label=t)
    axes[0].set_ylabel("aggregate GB/s, guest -> host")
    axes[1].set_ylabel("bytes per connection (Pss_Anon, host + guest)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("concurrent streams")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("scale: aggregate throughput")
    axes[1].set_title("scale: client memory per connection")
    return fig


def _titles(fig):
    sup = getattr(fig, "_suptitle", None)  # matplotlib 3.6 has no public getter
    return [t for t in ([sup] if sup is not None else []) + [ax.title for ax in fig.axes] if t.get_text()]


def titles_outside(fig):
    """The titles whose drawn text does not lie wholly inside the image."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    bad = []
    for t in _titles(fig):
        b = t.get_window_extent(r)
        if b.x0 < 0 or b.y0 < 0 or b.x1 > w or b.y1 > h:
            bad.append(t.get_text())
    return bad


def layout(fig):
    """Lay the figure out so that every title fits: one too wide for the
    image is wrapped onto more lines (never cut), then the panels make room."""
    fig.tight_layout()
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    room = fig.bbox.width - 8
    for t in _titles(fig):
        text, width = t.get_text(), len(t.get_text())
        while t.get_window_extent(r).width > room and width > 12:
            width = int(width * 0.85)
            t.set_text(textwrap.fill(text, width))
    fig.tight_layout()


def save(fig, path):
    layout(fig)
    bad = titles_outside(fig)
    if bad:
        raise ValueError(f"{path}: titles outside the image: {bad}")
    fig.savefig(path, dpi=fig.dpi)
    plt.close(fig)


def _html_table(doc):
    subject = doc["subject"]
    cols = [subject, "af_unix", "tcp", "memcpy"]
    rows = []
    for name, f in doc["figures"].items():
        cells = []
        for c in cols:
            v = f["values"].get(c)
            cells.append("-" if v is None else
                         f"{v['median']:.4g}" + (f" <small>[{v['min']:.4g}..{v['max']:.4g}]</small>"
                                                 if len(v["rounds"]) > 1 else ""))
        rat = []
        for b in ("af_unix", "tcp", "memcpy"):
            r = f["ratios"].get(b)
            rat.append("-" if r is None else f"{r['median']:.4g}" +
                       (f" <small>[{r['min']:.3f}..{r['max']:.3f}]</small>" if len(r["rounds"]) > 1 else ""))
        rows.append("<tr><td>" + html.escape(name) + f"</td><td>{html.escape(f['unit'])}</td>" +
                    "".join(f"<td>{c}</td>" for c in cells + rat) + f"<td>{html.escape(f['gate'])}</td></tr>")
    head = ("<tr><th>figure</th><th>unit</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) +
            "".join(f"<th>{html.escape(subject)}/{b}</th>" for b in ("af_unix", "tcp", "memcpy")) +
            "<th>gate</th></tr>")
    return "<table>\n" + head + "\n" + "\n".join(rows) + "\n</table>"


def _detail_tables(doc):
    parts = []
    for name, f in doc["figures"].items():
        if f["class"] != "count" or not f.get("detail"):
            continue
        rows = "".join(f"<tr><td>{html.escape(t)}</td><td>" +
                       html.escape(", ".join(f"{k} {v:.4g}" for k, v in d.items())) + "</td></tr>"
                       for t, d in f["detail"].items())
        parts.append(f"<h3>{html.escape(name)} ({html.escape(f['unit'])})</h3><table>{rows}</table>")
    return "\n".join(parts)


def _placement(cfg):
    p = cfg.get("placement") or {}
    if p.get("host_cpu") is None or p["host_cpu"] < 0:
        return ", processes not pinned"
    return f", host process on CPU {p['host_cpu']}, guests on CPU {p['guest_cpu']}"


def write(doc, out):
    out = Path(out)
    outputs = {}
    for key, fn in (("throughput_png", throughput_chart), ("latency_png", latency_chart),
                    ("scale_png", scale_chart)):
        p = out / (key.replace("_png", "") + ".png")
        fig = fn(doc)
        if fig is not None:
            save(fig, p)
            outputs[key] = str(p)
    acc = "<tr><th>verdict</th><th>check</th><th>ratio (median of rounds)</th></tr>" + "".join(
        f"<tr><td>{'met' if a['met'] else '<b>NOT MET</b>'}</td><td>{html.escape(a['check'])}</td>"
        f"<td>{a['ratio']:.3f}</td></tr>" for a in doc.get("acceptance", []))
    imgs = "".join(f'<p><img src="{Path(p).name}" alt="{k}"></p>\n' for k, p in outputs.items())
    cfg = doc["config"]
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hvsim-bench: {html.escape(doc['target'])}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;margin:0.5em 0}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:13px}} td:first-child{{text-align:left}}
small{{color:#666}}</style></head><body>
<h1>hvsim-bench: {html.escape(doc['subject'])} on target {html.escape(doc['target'])}</h1>
<p>{html.escape(doc['created'])}, commit {html.escape(str(doc['git'].get('commit')))}
{'(with uncommitted changes)' if doc['git'].get('dirty') else ''}; {doc['machine']['cpus']} CPUs,
kernel {html.escape(doc['machine']['kernel'])}; {doc['mode']} run, {cfg['rounds']} rounds of
{cfg['seconds']} s per transport{_placement(cfg)}{'; HVSIM_TEST_SLOWDOWN=' + html.escape(cfg['slowdown']) if cfg['slowdown'] else ''}.</p>
<p>Wall-clock figures: median of the rounds, [min..max]; ratios are taken round by round (the transports
take turns) and summarised the same way. Count figures: per operation, from two fixed workloads of different
sizes (difference over difference).</p>
<h2>Acceptance (same run)</h2><table>{acc}</table>
<h2>Charts</h2>
{imgs}
<h2>Figures</h2>
{_html_table(doc)}
<h2>Where the counts go (per operation)</h2>
{_detail_tables(doc)}
</body></html>
"""
    p = out / "report.html"
    p.write_text(page)
    outputs["report_html"] = str(p)
    return outputs


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: report.py RESULT.json [OUTDIR]", file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(sys.argv[1]).parent
    out.mkdir(parents=True, exist_ok=True)
    for p in write(doc, out).values():
        print(f"wrote {p}")


if __name__ == "__main__":
    main()
