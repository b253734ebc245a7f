// Types of the <websem-search> web component (runtime/component.js in a bundle). Shared types come
// from "../websem.js" in the bundle's layout (web/src/index.d.ts).
//
//   <script type="module" src="/_websem/runtime/component.js"></script>
//   <websem-search bundle="/_websem/" k="10" placeholder="Search the docs" facet="section"></websem-search>
//
// Attributes: `bundle` (folder URL, default "./"), `k` (default: the bundle's manifest.search.k),
// `placeholder`, `facet` (the field of the filter <select>, default: the bundle's first facet
// field; none, no filter); `state` is set by the element: loading | ready | searching | error,
// and `tier`: lexical (keyword results while the model loads, with a progress bar) | full |
// lexical-only (the model failed to load; keyword results stay).
// Document text is rendered with textContent only, never as HTML.

import type { Engine, EngineInfo, Range, SearchResult } from "../websem.js";

/** `detail` of `websem-results`. */
export interface WebsemResultsDetail extends SearchResult {
  query: string;
}

/** The element's events. */
export interface WebsemSearchEventMap extends HTMLElementEventMap {
  /** The engine answers (its lexical tier at least: `info.tier`). */
  "websem-ready": CustomEvent<EngineInfo>;
  /** The full tier is up: the current query runs again, its results updated in place (a `websem-results` with `tier: "full"` follows). */
  "websem-model-ready": CustomEvent<EngineInfo>;
  "websem-results": CustomEvent<WebsemResultsDetail>;
  "websem-error": CustomEvent<{ message: string }>;
}

export class WebsemSearch extends HTMLElement {
  /** The loaded engine, `null` until `websem-ready`. */
  readonly engine: Engine | null;
  addEventListener<K extends keyof WebsemSearchEventMap>(
    type: K,
    listener: (this: WebsemSearch, event: WebsemSearchEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof WebsemSearchEventMap>(
    type: K,
    listener: (this: WebsemSearch, event: WebsemSearchEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

/** Text nodes and <mark> elements for `text` with `ranges` marked (built without parsing HTML). */
export function highlighted(text: string, ranges: Range[]): Node[];

declare global {
  interface HTMLElementTagNameMap {
    "websem-search": WebsemSearch;
  }
}
