// htm bound to preact: JSX-like templates without a build step. Preact
// renders every interpolated value as text, so names (arbitrary bytes, shown
// in the CLI's escaped form) can never become markup.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
