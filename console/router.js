// Hash routes (#/keyspace?name=…&offset=…): every view has a URL that can
// be bookmarked and reloaded, and the server serves one page.
import { useEffect, useState } from 'preact/hooks';

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const params = new URLSearchParams(i < 0 ? '' : raw.slice(i + 1));
  return { path, params };
}

export function href(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const qs = q.toString();
  return `#${path}${qs ? `?${qs}` : ''}`;
}

export function navigate(path, params) {
  location.hash = href(path, params);
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Call `fn` now and every `ms` while mounted (and when `deps` change); returns [value, error]. */
export function usePoll(fn, ms, deps) {
  const [state, setState] = useState({ value: undefined, error: undefined });
  useEffect(() => {
    let alive = true;
    let timer;
    const tick = async () => {
      try {
        const value = await fn();
        if (alive) setState({ value, error: undefined });
      } catch (error) {
        if (alive) setState((s) => ({ value: s.value, error }));
      }
      if (alive && ms > 0) timer = setTimeout(tick, ms);
    };
    setState({ value: undefined, error: undefined });
    tick();
    return () => { alive = false; clearTimeout(timer); };
  }, deps);
  return [state.value, state.error];
}
