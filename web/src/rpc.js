// websem rpc: one request/response protocol over postMessage, for index.js <-> worker.js and
// engine <-> python-worker.js.
//
//   caller -> worker  {type: "call", id, method, args}
//   worker -> caller  {type: "result", id, value} | {type: "error", id, message}
//                     {type: "event", event}   (progress, any time)
// Errors cross as their message (always starting with `websem:`) and become WebsemErrors again.
import { WebsemError, errorMessage } from "./errors.js";

/** A method's return value whose `buffers` move to the caller instead of being copied. */
export class Transfer {
  constructor(value, buffers) {
    this.value = value;
    this.buffers = buffers;
  }
}

/**
 * The caller's side, over a Worker (or anything with postMessage/onmessage/onerror/terminate).
 *
 * @param {Worker} worker
 * @param {object} [hooks]
 * @param {(event: object) => void} [hooks.onEvent] gets every `{type: "event"}` payload
 * @param {(event: ErrorEvent) => Error} [hooks.onError] the error for a worker that failed to start
 *   or crashed; every pending and later call rejects with it
 * @returns {{call: (method: string, ...args: any[]) => Promise<any>, close: () => void}}
 */
export function connect(worker, { onEvent = () => {}, onError } = {}) {
  const pending = new Map();
  let nextId = 1;
  let failure = null;
  const fail = (err) => {
    failure = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.onmessage = ({ data }) => {
    if (data?.type === "event") {
      try {
        onEvent(data.event);
      } catch {
        // A throwing progress callback must not break the protocol.
      }
      return;
    }
    const p = pending.get(data?.id);
    if (!p) return;
    pending.delete(data.id);
    if (data.type === "result") p.resolve(data.value);
    else p.reject(new WebsemError(data.message));
  };
  worker.onerror = (event) => {
    event?.preventDefault?.();
    fail(onError ? onError(event) : new WebsemError(`a worker failed (${event?.message || "load error"})`));
  };
  return {
    call(method, ...args) {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ type: "call", id, method, args });
      });
    },
    close(reason = new WebsemError("this engine was closed; call load() again")) {
      worker.terminate();
      fail(reason);
    },
  };
}

/**
 * The worker's side: answers calls with `methods[name](...args)` (a value, a promise, or a
 * Transfer). Returns `emit(event)`, which sends a `{type: "event"}` message.
 *
 * @param {object} scope the worker's global scope (`self`)
 * @param {Object<string, Function>} methods
 */
export function serve(scope, methods) {
  scope.onmessage = async ({ data }) => {
    if (data?.type !== "call") return;
    try {
      const fn = Object.hasOwn(methods, data.method) ? methods[data.method] : null;
      if (!fn) throw new WebsemError(`unknown method ${JSON.stringify(data.method)}; use one of ${Object.keys(methods).join(", ")}`);
      const value = await fn(...(data.args ?? []));
      if (value instanceof Transfer) scope.postMessage({ type: "result", id: data.id, value: value.value }, value.buffers);
      else scope.postMessage({ type: "result", id: data.id, value });
    } catch (e) {
      scope.postMessage({ type: "error", id: data.id, message: errorMessage(e) });
    }
  };
  return (event) => scope.postMessage({ type: "event", event });
}
