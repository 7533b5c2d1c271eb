// The countd console: one page, four views, every figure from /api/v1/.
import { render } from 'preact';
import { html } from './html.js';
import { useRoute } from './router.js';
import { Overview } from './views/overview.js';
import { KeyspaceList } from './views/keyspaces.js';
import { KeyspaceView } from './views/keyspace.js';
import { CommitLogs, CommitLogView } from './views/commitlogs.js';

const NAV = [
  ['/', 'Overview'],
  ['/keyspaces', 'Keyspaces'],
  ['/commitlogs', 'Commit logs'],
];

function section(path) {
  if (path.startsWith('/keyspace')) return '/keyspaces';
  if (path.startsWith('/commitlog')) return '/commitlogs';
  return '/';
}

function App() {
  const { path, params } = useRoute();
  let view;
  const log = /^\/commitlog\/(\d+)$/.exec(path);
  if (path === '/') view = html`<${Overview} />`;
  else if (path === '/keyspaces') view = html`<${KeyspaceList} params=${params} />`;
  else if (path === '/keyspace') view = html`<${KeyspaceView} params=${params} />`;
  else if (path === '/commitlogs') view = html`<${CommitLogs} />`;
  else if (log) view = html`<${CommitLogView} index=${Number(log[1])} />`;
  else view = html`<p class="error">No such view: <code>${path}</code>. <a href="#/">Back to the overview</a>.</p>`;
  const current = section(path);
  return html`
    <header class="top">
      <a class="brand" href="#/">countd</a>
      <nav>${NAV.map(([p, label]) => html`<a href=${'#' + p} class=${current === p ? 'active' : ''}>${label}</a>`)}</nav>
      <span class="readonly" title="The console only reads: GET requests only">read-only</span>
    </header>
    <main>${view}</main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "Loading" placeholder
render(html`<${App} />`, root);
