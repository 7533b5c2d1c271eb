import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { api } from '../api.js';
import { href, navigate, usePoll } from '../router.js';
import { num } from '../format.js';
import { ErrorBox, Loading, Name } from './common.js';

const PAGE = 50;

export function KeyspaceList({ params }) {
  const filter = params.get('filter') || '';
  const sort = params.get('sort') === 'keys' ? 'keys' : 'name';
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const [text, setText] = useState(filter);
  useEffect(() => setText(filter), [filter]);
  // Typing filters after a short pause, so 10,000 keyspaces do not re-query per key stroke.
  useEffect(() => {
    if (text === filter) return;
    const t = setTimeout(() => navigate('/keyspaces', { filter: text, sort: sort === 'name' ? '' : sort }), 250);
    return () => clearTimeout(t);
  }, [text]);
  const [r, error] = usePoll(() => api('keyspaces', { offset, limit: PAGE, filter, sort }), 5000, [offset, filter, sort]);
  const go = (o) => href('/keyspaces', { filter, sort: sort === 'name' ? '' : sort, offset: o || '' });
  return html`
    <h1>Keyspaces ${r ? html`<span class="sub" id="keyspace-total">${num(r.total)} in all</span>` : null}</h1>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); navigate('/keyspaces', { filter: text, sort: sort === 'name' ? '' : sort }); }}>
      <input id="keyspace-filter" type="search" placeholder="filter by name, e.g. season" value=${text} onInput=${(e) => setText(e.currentTarget.value)} aria-label="filter keyspaces by name" />
      <label>sort <select id="keyspace-sort" value=${sort} onChange=${(e) => navigate('/keyspaces', { filter, sort: e.currentTarget.value === 'name' ? '' : e.currentTarget.value })}>
        <option value="name">by name</option><option value="keys">by keys</option>
      </select></label>
    </form>
    <${ErrorBox} error=${error} />
    ${!r ? (error ? null : html`<${Loading} what="keyspaces" />`) : html`
      <p class="sub" id="keyspace-range">${r.matched === 0 ? (r.total === 0 ? 'No keyspace yet: write one with `countd write <keyspace> <key>`.' : 'No keyspace matches.') : `${num(offset + 1)}–${num(Math.min(offset + PAGE, r.matched))} of ${num(r.matched)}${filter ? ' matching' : ''}`}</p>
      ${r.matched === 0 ? null : html`<table class="grid" id="keyspace-table">
        <thead><tr><th class="wide">keyspace</th><th class="n">keys</th></tr></thead>
        <tbody>${r.keyspaces.map((k) => html`<tr><td class="wide"><a href=${href('/keyspace', { name: k.name })}><${Name} text=${k.name} /></a></td><td class="n">${num(k.keys)}</td></tr>`)}</tbody>
      </table>
      <${Pager} offset=${offset} total=${r.matched} page=${PAGE} go=${go} />`}`}`;
}

export function Pager({ offset, total, page, go }) {
  const last = Math.max(0, Math.floor((total - 1) / page) * page);
  const link = (label, o, enabled, id) => enabled ? html`<a class="btn" id=${id} href=${go(o)}>${label}</a>` : html`<span class="btn disabled">${label}</span>`;
  return html`<nav class="pager">
    ${link('« first', 0, offset > 0, 'page-first')}
    ${link('‹ previous', Math.max(0, offset - page), offset > 0, 'page-prev')}
    ${link('next ›', offset + page, offset + page < total, 'page-next')}
    ${link('last »', last, offset < last, 'page-last')}
  </nav>`;
}
