// Live charts of /api/v1/history (uPlot): polled every second, only the
// samples since the last poll are fetched.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from '../html.js';
import { api } from '../api.js';
import { num } from '../format.js';
import { ErrorBox } from './common.js';

const KEEP = 600;

const CHARTS = [
  { id: 'rates', title: 'Increments per second', series: [['acked', 'acknowledged (WIN)', '#2563eb'], ['applied', 'applied (readable)', '#16a34a'], ['failed', 'failed (ERR)', '#dc2626']] },
  { id: 'backlog', title: 'Backlog: dirty commit logs', series: [['backlog', 'dirty logs', '#d97706']] },
  { id: 'lag', title: 'Write-to-readable lag (s)', help: 'how long the oldest handed-over commit log has waited for the worker (its writes waited up to the hand-over time more)', series: [['lag', 'oldest dirty log waiting', '#7c3aed']] },
  { id: 'stall', title: 'Apply stall (s)', help: 'time since the worker last applied anything while logs waited', series: [['stall', 'stall', '#be123c']] },
];

function empty() {
  return { t: [], acked: [], applied: [], failed: [], backlog: [], lag: [], stall: [] };
}

export function Charts() {
  const [data, setData] = useState(empty());
  const [error, setError] = useState(undefined);
  const last = useRef(0);
  useEffect(() => {
    let alive = true;
    let timer;
    const tick = async () => {
      try {
        const h = await api('history', { since: last.current });
        if (!alive) return;
        if (h.t.length > 0) {
          last.current = h.t[h.t.length - 1];
          setData((d) => {
            const out = {};
            for (const k of Object.keys(d)) out[k] = d[k].concat(h[k]).slice(-KEEP);
            return out;
          });
        }
        setError(undefined);
      } catch (e) {
        if (alive) setError(e);
      }
      if (alive) timer = setTimeout(tick, 1000);
    };
    tick();
    return () => { alive = false; clearTimeout(timer); };
  }, []);
  const latest = (k) => (data[k].length ? data[k][data[k].length - 1] : null);
  return html`
    <${ErrorBox} error=${error} />
    <div class="charts">
      ${CHARTS.map((c) => html`<${Chart} key=${c.id} spec=${c} data=${data} latest=${latest} />`)}
    </div>`;
}

function Chart({ spec, data, latest }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(280, box.current.clientWidth);
    const opts = {
      width,
      height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
      axes: [
        { stroke: '#64748b', grid: { stroke: '#eef2f7' }, values: (u, splits) => splits.map(clock) },
        { stroke: '#64748b', grid: { stroke: '#eef2f7' }, size: 60 },
      ],
      series: [{}].concat(spec.series.map(([, label, color]) => ({ label, stroke: color, width: 2, fill: color + '18', points: { show: false } }))),
    };
    plot.current = new uPlot(opts, toColumns(spec, data), box.current);
    // The box's width settles as the rest of the page loads: follow it.
    const el = box.current;
    const observer = new ResizeObserver(() => {
      // Also called once more after unmounting: then there is no plot.
      const w = Math.max(280, el.clientWidth);
      if (plot.current && w !== plot.current.width) plot.current.setSize({ width: w, height: 180 });
    });
    observer.observe(el);
    return () => { observer.disconnect(); plot.current.destroy(); plot.current = null; };
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData(toColumns(spec, data));
  }, [data]);
  return html`
    <figure class="chart" id=${'chart-' + spec.id}>
      <figcaption>
        <span class="title">${spec.title}</span>
        ${spec.series.map(([k, label, color]) => html`<span class="legend"><i style=${{ background: color }}></i>${label} <b data-series=${k}>${fmt(latest(k))}</b></span>`)}
        ${spec.help ? html`<div class="help">${spec.help}</div>` : null}
      </figcaption>
      <div ref=${box} class="plot"></div>
    </figure>`;
}

/** Axis labels: the local time of day, 24-hour. */
function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function fmt(v) {
  if (v === null) return '—';
  return v < 10 && v !== Math.round(v) ? v.toFixed(1) : num(v);
}

function toColumns(spec, data) {
  return [data.t.map((t) => t / 1000)].concat(spec.series.map(([k]) => data[k]));
}
