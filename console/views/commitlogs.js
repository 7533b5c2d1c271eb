import { html } from '../html.js';
import { api } from '../api.js';
import { usePoll } from '../router.js';
import { bytes, groupDigits, num, time } from '../format.js';
import { Card, ErrorBox, Loading, Name } from './common.js';

export function CommitLogs() {
  const [r, error] = usePoll(() => api('commitlogs'), 3000, []);
  if (!r) return html`<h1>Commit logs</h1><${ErrorBox} error=${error} />${error ? null : html`<${Loading} what="the pool" />`}`;
  const s = r.status;
  return html`
    <h1>Commit logs <span class="sub">${num(s.logs)} in the pool</span></h1>
    <${ErrorBox} error=${error} />
    <section class="cards">
      <${Card} label="clean" value=${num(s.clean)} />
      <${Card} label="dirty" value=${num(s.dirty)} tone=${s.dirty > 0 ? 'warn' : ''} />
      <${Card} label="locked" value=${num(s.locked)} />
      <${Card} label="quarantined" value=${num(s.quarantined)} tone=${s.quarantined > 0 ? 'bad' : ''} />
      ${s.other > 0 ? html`<${Card} label="other mode" value=${num(s.other)} hint="nobody claims these" tone="bad" />` : null}
      <${Card} label="backlog" value=${num(s.backlogFrames)} hint="increments in dirty logs" />
    </section>
    <table class="grid" id="log-table">
      <thead><tr><th>log</th><th>state</th><th>mode</th><th>lock</th><th class="n">size</th><th>last write</th><th class="n">increments</th><th>damage</th></tr></thead>
      <tbody>${r.logs.map((l) => html`<tr class=${l.problems ? 'bad' : ''}>
        <td><a href=${'#/commitlog/' + l.index}><code>${l.name}</code></a></td>
        <td><span class=${'state ' + l.state.replace(/\s.*/, '')}>${l.state}</span></td>
        <td><code>${l.mode}</code></td>
        <td>${l.locked ? 'locked' : ''}</td>
        <td class="n">${bytes(l.sizeBytes)}</td>
        <td>${time(l.modifiedAt)}</td>
        <td class="n">${l.frames === undefined ? '' : num(l.frames)}</td>
        <td>${l.problems ? html`<a href=${'#/commitlog/' + l.index}>${l.problems} problem${l.problems > 1 ? 's' : ''}</a>` : ''}</td>
      </tr>`)}</tbody>
    </table>`;
}

export function CommitLogView({ index }) {
  const [r, error] = usePoll(() => api(`commitlogs/${index}`, { limit: 200 }), 0, [index]);
  return html`
    <p class="crumbs"><a href="#/commitlogs">Commit logs</a> ›</p>
    <h1>Commit log <code>${String(index).padStart(10, '0')}</code></h1>
    <${ErrorBox} error=${error} />
    ${!r ? (error ? null : html`<${Loading} what="the log" />`) : html`
      <p class="sub">What <code>countd commitlog ${index}</code> reports:</p>
      <pre class="report" id="log-report">${r.report.map((line) => 'countd: ' + line).join('\n')}</pre>
      ${r.damaged ? html`<p class="error" id="log-damaged">Damaged: ${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}. Only the valid records below can be applied; the damaged bytes are dropped.</p>` : null}
      ${r.state === 'quarantined' ? html`<p class="note" id="log-quarantined">Quarantined: its header cannot be verified, so no writer reuses it; the records below were salvaged. Release it with <code>countd commitlog ${index} --release</code> once you have kept what you need.</p>` : null}
      <h2>${r.salvaging ? 'Salvaged entries' : 'Entries'} <span class="sub">${r.entriesShown < r.entriesTotal ? `the first ${num(r.entriesShown)} of ${num(r.entriesTotal)}` : num(r.entriesTotal)}</span></h2>
      <table class="grid" id="log-entries">
        <thead><tr><th class="n narrow">seq</th><th>keyspace</th><th class="wide">key</th><th class="n">increment</th></tr></thead>
        <tbody>${r.entries.map((e) => html`<tr><td class="n narrow">${e.seq}</td><td><${Name} text=${e.keyspace} /></td><td class="wide"><${Name} text=${e.key} /></td><td class="n">${groupDigits(e.increment)}</td></tr>`)}</tbody>
      </table>`}`;
}
