import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { api } from '../api.js';
import { href, navigate, usePoll } from '../router.js';
import { groupDigits, num } from '../format.js';
import { ErrorBox, Loading, Name } from './common.js';
import { Pager } from './keyspaces.js';

const PAGE = 50;

export function KeyspaceView({ params }) {
  const name = params.get('name') || '';
  const offset = Math.max(0, Math.floor(Number(params.get('offset')) || 0));
  const key = params.get('key') || '';
  const [r, error] = usePoll(() => api('keyspace', { name, offset, limit: PAGE }), 3000, [name, offset]);
  const go = (o) => href('/keyspace', { name, offset: o || '', key });
  return html`
    <p class="crumbs"><a href="#/keyspaces">Keyspaces</a> ›</p>
    <h1><${Name} text=${name} /> ${r ? html`<span class="sub" id="keyspace-keys">${num(r.keys)} keys</span>` : null}</h1>
    <div class="toolbar">
      <${JumpTo} name=${name} keys=${r ? r.keys : 0} key=${key} />
      <${SearchBox} name=${name} initial=${key} />
    </div>
    ${key ? html`<${SearchResult} name=${name} keyText=${key} />` : null}
    <${ErrorBox} error=${error} />
    ${!r ? (error ? null : html`<${Loading} what="the page" />`) : html`
      <p class="sub" id="page-range">${r.entries.length === 0 ? (r.keys === 0 ? 'This keyspace is empty.' : `No entries at offset ${num(offset)}: the keyspace has ${num(r.keys)}.`) : `ranks ${num(offset)}–${num(offset + r.entries.length - 1)} of ${num(r.keys)} (0-based, as countd rank prints them)`}</p>
      <${Entries} entries=${r.entries} highlight=${key} id="page-table" />
      <${Pager} offset=${offset} total=${r.keys} page=${PAGE} go=${go} />`}`;
}

function Entries({ entries, highlight, id }) {
  return html`<table class="grid" id=${id}>
    <thead><tr><th class="n narrow">rank</th><th class="wide">key</th><th class="n">count</th></tr></thead>
    <tbody>${entries.map((e) => html`<tr class=${e.key === highlight ? 'hit' : ''}><td class="n narrow">${num(e.rank)}</td><td class="wide"><${Name} text=${e.key} /></td><td class="n">${groupDigits(e.count)}</td></tr>`)}</tbody>
  </table>`;
}

function JumpTo({ name, keys, key }) {
  const [text, setText] = useState('');
  const submit = (e) => {
    e.preventDefault();
    const rank = Math.floor(Number(text.replace(/[,_\s]/g, '')));
    if (!Number.isFinite(rank) || rank < 0) return;
    const target = Math.min(rank, Math.max(0, keys - 1));
    navigate('/keyspace', { name, offset: Math.floor(target / PAGE) * PAGE || '', key });
  };
  return html`<form onSubmit=${submit} class="inline">
    <input id="jump-rank" inputmode="numeric" placeholder=${keys ? `go to rank (0–${groupDigits(Math.max(0, keys - 1))})` : 'go to rank'} value=${text} onInput=${(e) => setText(e.currentTarget.value)} aria-label="go to rank" />
    <button type="submit" id="jump-go">go</button>
  </form>`;
}

function SearchBox({ name, initial }) {
  const [text, setText] = useState(initial);
  useEffect(() => setText(initial), [initial]);
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); navigate('/keyspace', { name, key: text }); }}>
    <input id="key-search" type="search" placeholder="find a key (escaped form)" value=${text} onInput=${(e) => setText(e.currentTarget.value)} aria-label="find a key" />
    <button type="submit" id="key-go">find</button>
  </form>`;
}

function SearchResult({ name, keyText }) {
  const [r, error] = usePoll(() => api('keyspace/search', { name, key: keyText, n: 11 }), 0, [name, keyText]);
  if (error) return html`<div class="result" id="search-result"><${ErrorBox} error=${error} /></div>`;
  if (!r) return html`<${Loading} what="the key" />`;
  return html`<div class="result" id="search-result">
    <p><${Name} text=${r.key} /> is at rank <b id="search-rank">${num(r.rank)}</b> with count <b id="search-count">${groupDigits(r.count)}</b>.${' '}
      <a href=${href('/keyspace', { name, key: keyText, offset: Math.floor(r.rank / PAGE) * PAGE || '' })}>Show its page</a></p>
    <${Entries} entries=${r.around} highlight=${r.key} id="around-table" />
  </div>`;
}
