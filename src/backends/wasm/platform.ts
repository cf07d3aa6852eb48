// What the wasm kernels need from the JavaScript host, for Node and browsers alike: the .wasm bytes
// (file system or fetch), V8 flags (Node 20 only: relaxed SIMD is behind a flag there), and pool
// workers (worker_threads or module Web Workers). Node modules are imported on demand, so this file
// and everything above it load in a browser (which needs cross-origin isolation, COOP + COEP headers,
// for the shared memories).

/** True under Node (where `worker_threads`, `node:fs` and V8 flags are available). */
export const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";

/** The bytes at a file: URL (Node) or an http(s) URL (fetch). */
export async function readBytes(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === "file:") {
    const fs = await import("node:fs/promises");
    const b = await fs.readFile(url);
    return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  }
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.href}: HTTP ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Sets V8 flags where the host allows it (Node); a no-op in browsers. */
export async function setV8Flags(...flags: string[]): Promise<void> {
  if (!isNode) return;
  try {
    const v8 = await import("node:v8");
    for (const f of flags) v8.setFlagsFromString(f);
  } catch {
    /* not V8 */
  }
}

/** Logical cores (os.availableParallelism in Node, navigator.hardwareConcurrency in browsers). */
export async function hostCores(): Promise<number> {
  if (isNode) return (await import("node:os")).availableParallelism();
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}

/** A directory given as a URL, or (Node) a file-system path, or (browser) a path relative to the page. */
export async function dirURL(dir: string | URL): Promise<URL> {
  if (dir instanceof URL) return new URL(dir.href.endsWith("/") ? dir.href : dir.href + "/");
  const d = dir.endsWith("/") ? dir : dir + "/";
  if (isNode) return (await import("node:url")).pathToFileURL(d);
  return new URL(d, (globalThis as unknown as { location: { href: string } }).location.href);
}

/** One pool worker, whichever kind the host has. */
export interface PoolWorker {
  post(message: unknown): void;
  /** Adds a listener; returns its removal. */
  onMessage(cb: (message: { type: string; id?: number }) => void): () => void;
  onError(cb: (e: Error) => void): () => void;
  terminate(): void;
}

interface WebWorkerLike {
  postMessage(m: unknown): void;
  addEventListener(t: string, f: (e: { data?: unknown; message?: string }) => void): void;
  removeEventListener(t: string, f: (e: { data?: unknown; message?: string }) => void): void;
  terminate(): void;
}

/** Starts the worker module at `url`: a worker_threads Worker (unref'd) in Node, a module Web Worker elsewhere. */
export async function startWorker(url: URL): Promise<PoolWorker> {
  if (isNode) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(url);
    w.unref();
    return {
      post: (m) => w.postMessage(m),
      onMessage(cb) {
        w.on("message", cb);
        return () => w.off("message", cb);
      },
      onError(cb) {
        w.on("error", cb);
        return () => w.off("error", cb);
      },
      terminate: () => void w.terminate(),
    };
  }
  const Ctor = (globalThis as unknown as { Worker?: new (u: URL, o: { type: string }) => WebWorkerLike }).Worker;
  if (!Ctor) throw new Error("WasmKernels: this host has neither worker_threads nor Web Workers; use threads: 1");
  const w = new Ctor(url, { type: "module" });
  return {
    post: (m) => w.postMessage(m),
    onMessage(cb) {
      const f = (e: { data?: unknown }): void => cb(e.data as { type: string; id?: number });
      w.addEventListener("message", f);
      return () => w.removeEventListener("message", f);
    },
    onError(cb) {
      const f = (e: { message?: string }): void => cb(new Error(`pool worker: ${e.message ?? "failed to start"}`));
      w.addEventListener("error", f);
      return () => w.removeEventListener("error", f);
    },
    terminate: () => w.terminate(),
  };
}
