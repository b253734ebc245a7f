// web/src/rpc.js over a real MessageChannel (what a Worker's postMessage is built on): the caller
// side (`connect`) on one port, the worker side (`serve`) on the other.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebsemError } from "../../web/src/errors.js";
import { Transfer, connect, serve } from "../../web/src/rpc.js";

function pair(methods, hooks) {
  const { port1, port2 } = new MessageChannel();
  const emit = serve(port2, methods);
  // A Worker is a port with terminate(); onerror is set by connect and fired by the test.
  const worker = Object.assign(port1, { terminate: () => port1.close() });
  const rpc = connect(worker, hooks);
  return { rpc, emit, worker, close: () => { port1.close(); port2.close(); } };
}

test("a call resolves with the method's value, sync or async", async () => {
  const p = pair({ add: (a, b) => a + b, later: async (x) => ({ x }) });
  assert.equal(await p.rpc.call("add", 2, 3), 5);
  assert.deepEqual(await p.rpc.call("later", [1, 2]), { x: [1, 2] });
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => p.rpc.call("add", i, 1)));
  assert.deepEqual(many, Array.from({ length: 20 }, (_, i) => i + 1));
  p.close();
});

test("a thrown error arrives as a WebsemError with the websem: message", async () => {
  const p = pair({
    fail: () => {
      throw new Error("k must be a positive integer, got 0");
    },
  });
  await assert.rejects(p.rpc.call("fail"), (e) => e instanceof WebsemError && e.message === "websem: k must be a positive integer, got 0");
  await assert.rejects(p.rpc.call("nope"), /websem: unknown method "nope"; use one of fail/);
  p.close();
});

test("events reach onEvent; a throwing onEvent does not break calls", async () => {
  const seen = [];
  const p = pair(
    {
      work: () => {
        emit({ stage: "one" });
        emit({ stage: "two" });
        return "done";
      },
    },
    {
      onEvent: (e) => {
        seen.push(e.stage);
        throw new Error("callback bug");
      },
    },
  );
  const emit = p.emit;
  assert.equal(await p.rpc.call("work"), "done");
  assert.deepEqual(seen, ["one", "two"]);
  p.close();
});

test("a Transfer moves its buffers instead of copying them", async () => {
  let sent;
  const p = pair({
    encode: () => {
      sent = [new BigInt64Array([101n, 7n, 102n])];
      return new Transfer(sent, sent.map((a) => a.buffer));
    },
  });
  const got = await p.rpc.call("encode");
  assert.deepEqual(Array.from(got[0]), [101n, 7n, 102n]);
  assert.equal(sent[0].byteLength, 0, "the sender's buffer is detached");
  p.close();
});

test("a worker error rejects pending and later calls with the onError error", async () => {
  const p = pair({ never: () => new Promise(() => {}) }, { onError: (ev) => new WebsemError(`worker died (${ev.message})`) });
  const pending = p.rpc.call("never");
  p.worker.onerror({ message: "load error", preventDefault() {} });
  await assert.rejects(pending, /websem: worker died \(load error\)/);
  await assert.rejects(p.rpc.call("never"), /websem: worker died/);
  p.close();
});

test("close() rejects later calls", async () => {
  const p = pair({ ping: () => "pong" });
  assert.equal(await p.rpc.call("ping"), "pong");
  p.rpc.close();
  await assert.rejects(p.rpc.call("ping"), /websem: this engine was closed; call load\(\) again/);
  p.close();
});
