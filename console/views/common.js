import { html } from '../html.js';

/** A name (keyspace or key) in the CLI's escaped form; <bdi> keeps right-to-left names from reordering the row. */
export function Name({ text }) {
  return html`<bdi class="name">${text}</bdi>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert"><span class="code">${error.code || 'error'}</span> ${error.message}</p>`;
}

export function Loading({ what }) {
  return html`<p class="loading">Loading ${what}…</p>`;
}

export function Card({ label, value, hint, tone }) {
  return html`<div class=${'card ' + (tone || '')}><div class="label">${label}</div><div class="value" data-field=${label}>${value}</div>${hint ? html`<div class="hint">${hint}</div>` : null}</div>`;
}
