import { html } from '../html.js';
import { api } from '../api.js';
import { usePoll } from '../router.js';
import { duration, num } from '../format.js';
import { Card, ErrorBox, Loading } from './common.js';
import { Charts } from './charts.js';

export function Overview() {
  const [s, error] = usePoll(() => api('status'), 2000, []);
  return html`
    <h1>Overview</h1>
    <${ErrorBox} error=${error} />
    ${s ? html`<${Status} s=${s} />` : error ? null : html`<${Loading} what="the daemon's status" />`}
    <h2>Last minutes <span class="sub">sampled every second</span></h2>
    <${Charts} />`;
}

function Status({ s }) {
  const c = s.commitLogs;
  const ports = [`write ${s.ports.write}`, `read ${s.ports.read}`, `http ${s.ports.http}`].concat(s.ports.metrics ? [`metrics ${s.ports.metrics}`] : []);
  return html`
    <section class="daemon" id="daemon">
      <dl class="facts">
        <dt>version</dt><dd data-field="version">${s.version}</dd>
        <dt>uptime</dt><dd data-field="uptime">${duration(s.uptimeSeconds)} <span class="sub">since ${s.startedAt}</span></dd>
        <dt>pid</dt><dd data-field="pid">${s.pid}</dd>
        <dt>listen</dt><dd data-field="listen">${s.listen}: ${ports.join(', ')}</dd>
        <dt>data directory</dt><dd data-field="dataDir"><code>${s.dataDir}</code> <span class="sub">(keyspace size ${s.keyspaceSize}, key size ${s.keySize})</span></dd>
      </dl>
    </section>
    <section class="cards" id="pool">
      <${Card} label="keyspaces" value=${s.keyspaces === null ? '?' : num(s.keyspaces)} hint=${s.keyspacesNote ? s.keyspacesNote : html`<a href="#/keyspaces">browse</a>`} />
      <${Card} label="backlog" value=${num(c.backlogFrames)} hint="increments waiting in dirty logs" tone=${c.backlogFrames > 0 ? 'warn' : ''} />
      <${Card} label="clean" value=${num(c.clean)} hint="free or being filled" />
      <${Card} label="dirty" value=${num(c.dirty)} hint="waiting for the worker" tone=${c.dirty > 0 ? 'warn' : ''} />
      <${Card} label="locked" value=${num(c.locked)} hint="owned by a writer or worker" />
      <${Card} label="quarantined" value=${num(c.quarantined)} hint="set aside: look at them" tone=${c.quarantined > 0 ? 'bad' : ''} />
      ${c.other > 0 ? html`<${Card} label="other mode" value=${num(c.other)} hint="nobody claims these" tone="bad" />` : null}
      <${Card} label="commit logs" value=${num(c.logs)} hint=${html`<a href="#/commitlogs">inspect</a>`} />
    </section>`;
}
