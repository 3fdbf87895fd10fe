"""A read-only page of the fleet in the browser (``trading-pipeline fleet web``), from the
ledgers and the deployment store alone: each bot's assignment with its lineage links, positions,
equity curve, today's loss against its daily limit, and its latest risk events.

``GET /`` is the page (no external script: it runs offline and draws its curves as SVG);
``GET /api/fleet`` the same numbers as JSON, which the page re-reads every few seconds. Nothing
is ever written: every other method is refused, and the server binds 127.0.0.1 by default.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from trading_pipeline.bots.deploy_store import DeploymentStore
from trading_pipeline.bots.fleet import bot_view, close_all, day_start_ms, ledger_paths
from trading_pipeline.bots.ledger import Ledger
from trading_pipeline.links import dagster_run_url, mlflow_model_version_url, mlflow_run_url

CURVE_POINTS = 400  # equity marks per bot sent to the page (the latest ones)
EVENTS = 10  # latest risk events per bot


def _links(lineage: dict[str, Any], mlflow_ui: str, dagster_ui: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if lineage.get("model_name") and lineage.get("model_version") is not None:
        out["model"] = mlflow_model_version_url(
            mlflow_ui, str(lineage["model_name"]), lineage["model_version"]
        )
    if lineage.get("model_run_id"):
        out["training run"] = mlflow_run_url(mlflow_ui, str(lineage["model_run_id"]))
    if lineage.get("dagster_run_id"):
        out["deployed by"] = dagster_run_url(dagster_ui, str(lineage["dagster_run_id"]))
    return out


def fleet_snapshot(
    bots_dir: Path,
    mode: str,
    *,
    now_ms: int,
    mlflow_ui: str = "http://127.0.0.1:5000",
    dagster_ui: str = "http://127.0.0.1:3000",
) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data."""
    store = DeploymentStore(bots_dir)
    assignments = store.all_current()
    ledgers = {b: Ledger(p) for b, p in ledger_paths(bots_dir, mode).items()}
    bots: dict[str, Any] = {}
    try:
        for bot in sorted(set(ledgers) | set(assignments)):
            a = assignments.get(bot)
            entry: dict[str, Any] = {
                "assignment": None
                if a is None
                else {
                    "family": a.family,
                    "params": dict(a.params),
                    "version": a.version,
                    "symbols": list(a.symbols),
                    "interval": a.interval,
                    "capital_fraction": a.capital_fraction,
                    "decision": a.lineage.get("choice") or a.lineage.get("source"),
                    "links": _links(dict(a.lineage), mlflow_ui, dagster_ui),
                },
                "daily_loss_limit": a.risk.daily_loss if a is not None else None,
            }
            ledger = ledgers.get(bot)
            if ledger is not None:
                view = bot_view(bot, ledger, now_ms=now_ms)
                eq = ledger.equity().tail(CURVE_POINTS)
                events = ledger.risk_events().tail(EVENTS)
                loss = (
                    max(0.0, -view.day_pnl) / view.day_start_equity
                    if view.day_start_equity
                    else 0.0
                )
                entry.update(
                    equity=view.equity,
                    initial=view.initial_cash,
                    pnl=view.pnl,
                    day_pnl=view.day_pnl,
                    day_loss_fraction=loss,
                    positions=view.positions,
                    curve=[
                        [int(t), float(v)]
                        for t, v in zip(
                            eq["time"].dt.epoch("ms").to_list(), eq["equity"].to_list(), strict=True
                        )
                    ],
                    risk_events=[
                        {"time_ms": int(r["time_ms"]), "kind": r["kind"], "detail": r["detail"]}
                        for r in events.iter_rows(named=True)
                    ],
                )
            bots[bot] = entry
    finally:
        close_all(list(ledgers.values()))
    halt = store.halted()
    return {
        "mode": mode,
        "bots_dir": str(bots_dir),
        "as_of_ms": now_ms,
        "day_start_ms": day_start_ms(now_ms),
        "halted": halt.get("reason") if halt else None,
        "bots": bots,
    }


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trading-pipeline fleet</title>
<style>
body{font:14px system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px} .halt{color:#b71c1c;font-weight:bold}
.bots{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}
.bot{border:1px solid #ccc;border-radius:6px;padding:10px}
.bot h2{font-size:16px;margin:0 0 6px} .muted{color:#777} .bot div{overflow-wrap:anywhere}
.bar{height:8px;background:#eee;border-radius:4px;overflow:hidden}
.bar>div{height:8px;background:#2e7d32} .bar>div.near{background:#ef6c00} .bar>div.over{background:#b71c1c}
table{border-collapse:collapse} td{padding:1px 8px 1px 0}
</style></head><body>
<h1>fleet <span id="mode"></span> <span id="halt" class="halt"></span></h1>
<div class="muted" id="asof"></div><div class="bots" id="bots"></div>
<script>
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
function curve(points){
  if(points.length<2) return '<div class="muted">no equity marks yet</div>';
  const w=400,h=90,xs=points.map(p=>p[0]),ys=points.map(p=>p[1]);
  const x0=Math.min(...xs),x1=Math.max(...xs),y0=Math.min(...ys),y1=Math.max(...ys);
  const sx=t=>(x1>x0?(t-x0)/(x1-x0):0)*w, sy=v=>h-(y1>y0?(v-y0)/(y1-y0):0.5)*h;
  const pts=points.map(p=>sx(p[0]).toFixed(1)+','+sy(p[1]).toFixed(1)).join(' ');
  return '<svg class="curve" width="'+w+'" height="'+h+'"><polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="'+pts+'"/></svg>';
}
function render(d){
  document.getElementById('mode').textContent='('+d.mode+')';
  document.getElementById('halt').textContent=d.halted?'HALTED: '+d.halted:'';
  document.getElementById('asof').textContent='as of '+new Date(d.as_of_ms).toISOString()+' \u00b7 '+d.bots_dir;
  let html='';
  for(const [name,b] of Object.entries(d.bots)){
    const a=b.assignment;
    let s='<div class="bot" id="bot-'+esc(name)+'"><h2>'+esc(name)+'</h2>';
    if(a){s+='<div><b>'+esc(a.family)+'</b> v'+a.version+' '+esc(JSON.stringify(a.params))+' on '+esc(a.symbols.join(', '))+' '+esc(a.interval)+' \u00b7 '+(a.capital_fraction*100).toFixed(0)+'% of capital</div>';
      if(a.decision) s+='<div class="muted">decision: '+esc(a.decision)+'</div>';
      s+='<div>'+Object.entries(a.links).map(([k,u])=>'<a href="'+esc(u)+'">'+esc(k)+'</a>').join(' \u00b7 ')+'</div>';}
    else s+='<div class="muted">no assignment</div>';
    if(b.equity!==undefined){
      s+='<table><tr><td>equity</td><td>'+b.equity.toFixed(2)+'</td><td>PnL</td><td>'+(b.pnl>=0?'+':'')+b.pnl.toFixed(2)+'</td></tr>';
      const pos=Object.entries(b.positions).map(([k,q])=>esc(k)+' '+q).join(', ')||'flat';
      s+='<tr><td>positions</td><td colspan="3">'+pos+'</td></tr></table>';
      const lim=b.daily_loss_limit||0.1, used=Math.min(1,b.day_loss_fraction/lim);
      const cls=used>=1?'over':(used>0.7?'near':'');
      s+='<div>today: '+(b.day_pnl>=0?'+':'')+b.day_pnl.toFixed(2)+' \u00b7 loss '+(b.day_loss_fraction*100).toFixed(2)+'% of '+(lim*100).toFixed(0)+'% limit</div>';
      s+='<div class="bar"><div class="'+cls+'" style="width:'+(used*100).toFixed(1)+'%"></div></div>';
      s+=curve(b.curve);
      if(b.risk_events.length) s+='<div class="muted">risk: '+b.risk_events.map(e=>esc(e.kind)+' '+new Date(e.time_ms).toISOString().slice(0,16)).join('; ')+'</div>';
    } else s+='<div class="muted">no ledger yet</div>';
    html+=s+'</div>';
  }
  document.getElementById('bots').innerHTML=html||'<div class="muted">no bots</div>';
}
async function refresh(){try{const r=await fetch('api/fleet');render(await r.json());}catch(e){document.getElementById('asof').textContent='cannot read the fleet: '+e;}}
refresh(); setInterval(refresh, REFRESH_MS);
</script></body></html>
"""


def make_server(
    snapshot: Callable[[], dict[str, Any]],
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    refresh_s: float = 5.0,
) -> ThreadingHTTPServer:
    """A read-only HTTP server for the page (not yet serving)."""
    page = PAGE.replace("REFRESH_MS", str(int(refresh_s * 1000))).encode()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in {"/", "/index.html"}:
                return self._send(200, page, "text/html; charset=utf-8")
            if path == "/api/fleet":
                with lock:  # one snapshot at a time: SQLite readers, no pile-up
                    data = snapshot()
                body = json.dumps(data, default=str).encode()
                return self._send(200, body, "application/json")
            return self._send(404, b"not found", "text/plain")

        def _refuse(self) -> None:
            self._send(405, b"read-only", "text/plain")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    return ThreadingHTTPServer((host, port), Handler)


def now_ms() -> int:
    return int(time.time() * 1000)
