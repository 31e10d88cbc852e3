// One-at-a-time execution per key, in-process: a conversation's appends (message store) and
// group changes (group service) each run one after another. Batching: per key one batch at a
// time, or whatever arrives in one turn of the event loop together. And a gate that bounds how
// many tasks of a kind run at once.
import { busy, ConnectError } from "./errors.js";

/** Runs tasks with the same key one at a time, in arrival order; different keys run concurrently. */
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

interface Queued<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** Runs a batch and answers each item with its result, its own Error, or the batch's failure. */
async function settle<T, R>(batch: Queued<T, R>[], process: (items: T[]) => Promise<(R | Error)[]>): Promise<void> {
  try {
    const results = await process(batch.map((q) => q.item));
    batch.forEach((q, i) => {
      const r = results[i];
      if (r instanceof Error) q.reject(r);
      else if (r === undefined) q.reject(new Error("batch answered fewer items than it was given"));
      else q.resolve(r);
    });
  } catch (err) {
    for (const q of batch) q.reject(err);
  }
}

export interface KeyedBatchOptions<T> {
  /** Items in one batch at most (default 100). */
  maxBatch?: number;
  /** Items that run in a batch of their own. */
  alone?: (item: T) => boolean;
  /**
   * An idle key's first batch starts at the end of the current turn of the event loop
   * (setImmediate), not at once, so what else is issued in that turn goes with it.
   */
  gather?: boolean;
  /** With it, a batch also stops before the item that would pass `max` of their `weight`; an item heavier than that goes alone. */
  budget?: { weight: (item: T) => number; max: number };
  /**
   * Like Kafka's linger.ms: an idle key's first batch starts this long after its first item, and
   * each next batch of the key at least this long after the one before it started, so a key sends
   * at most 1000 / lingerMs batches a second, each with what arrived meanwhile. Fewer, larger
   * requests cost the caller and the server less CPU than many small ones; each item waits up to
   * this long more. 0 (the default): no wait.
   */
  lingerMs?: number;
}

/**
 * Runs items with the same key in batches, one batch at a time, in arrival order: items that
 * arrive while a batch of their key runs go together in the next one (see KeyedBatchOptions for
 * the bounds, `gather` and `lingerMs`). `process` answers each item of a batch with its result or
 * an Error (that item's failure); throwing fails the whole batch.
 */
export class KeyedBatchQueue<T, R> {
  private readonly queues = new Map<string, Queued<T, R>[]>();
  private readonly maxBatch: number;
  private readonly lingerMs: number;

  constructor(
    private readonly process: (key: string, items: T[]) => Promise<(R | Error)[]>,
    private readonly opts: KeyedBatchOptions<T> = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 100;
    this.lingerMs = opts.lingerMs ?? 0;
  }

  run(key: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue !== undefined) {
        queue.push({ item, resolve, reject });
        return;
      }
      this.queues.set(key, [{ item, resolve, reject }]);
      if (this.lingerMs > 0) setTimeout(() => void this.drain(key), this.lingerMs);
      else if (this.opts.gather === true) setImmediate(() => void this.drain(key));
      else void this.drain(key);
    });
  }

  private async drain(key: string): Promise<void> {
    const { alone = () => false, budget } = this.opts;
    for (let started = Number.NEGATIVE_INFINITY; ; ) {
      const queue = this.queues.get(key) ?? [];
      if (queue.length === 0) {
        this.queues.delete(key);
        return;
      }
      // The first batch lingered in run(); the next ones start lingerMs apart.
      const wait = started + this.lingerMs - performance.now();
      if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
      started = performance.now();
      let n = 1;
      const first = queue[0];
      if (first !== undefined && !alone(first.item)) {
        let weight = budget?.weight(first.item) ?? 0;
        for (let next = queue[n]; next !== undefined && n < this.maxBatch && !alone(next.item); next = queue[++n]) {
          if (budget !== undefined) {
            weight += budget.weight(next.item);
            if (weight > budget.max) break;
          }
        }
      }
      const batch = queue.splice(0, n);
      await settle(batch, (items) => this.process(key, items));
    }
  }
}

/**
 * What an item that carries `text` weighs on the wire, at most, for a byte budget: the text's
 * UTF-16 units at 3 bytes each of UTF-8, plus 1 KiB for its ids, timestamps and headers.
 */
export function wireBytesAtMost(text: string | undefined): number {
  return (text?.length ?? 0) * 3 + 1024;
}

/**
 * Gathers the items that arrive in one turn of the event loop into batches of at most `maxBatch`.
 * With `maxInFlight` (default: no bound), at most that many batches run at once: items that arrive
 * while the bound is reached wait and go together in the next batch, so a busy caller sends fewer,
 * larger batches; below the bound a caller's item costs it no more than the rest of the current
 * turn. At most `maxWaiting` items wait; past that an item is refused at once (ResourceExhausted
 * with a retry hint) rather than queued without bound. With `budget`, a batch also stops before the
 * item that would pass `max` of their `weight` (one heavier than that goes alone). `process`
 * answers as KeyedBatchQueue's does.
 */
export class TickBatcher<T, R> {
  private waiting: Queued<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly process: (items: T[]) => Promise<(R | Error)[]>,
    private readonly maxBatch = 100,
    private readonly maxInFlight = Number.POSITIVE_INFINITY,
    private readonly maxWaiting = Number.POSITIVE_INFINITY,
    private readonly budget?: { weight: (item: T) => number; max: number },
  ) {}

  run(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.waiting.length >= this.maxWaiting) {
        // Spread out, so the refused ones do not all come back at once.
        reject(busy("too many requests waiting here: retry after the hint", 250 + Math.random() * 500));
        return;
      }
      this.waiting.push({ item, resolve, reject });
      if (!this.scheduled && this.inFlight < this.maxInFlight) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.waiting.splice(0, this.batchLength());
      this.inFlight++;
      void settle(batch, this.process).finally(() => {
        this.inFlight--;
        this.flush();
      });
    }
  }

  /** How many of the waiting items the next batch takes (at least one). */
  private batchLength(): number {
    const n = Math.min(this.waiting.length, this.maxBatch);
    if (this.budget === undefined) return n;
    let weight = 0;
    for (let i = 0; i < n; i++) {
      const next = this.waiting[i];
      if (next === undefined) return i;
      weight += this.budget.weight(next.item);
      if (weight > this.budget.max) return Math.max(i, 1);
    }
    return n;
  }
}

/**
 * At most `concurrency` tasks at once, the rest waiting in arrival order, at most `maxWaiting` of
 * them; past that a task is refused at once (ResourceExhausted with a retry-after-ms hint: about
 * when the line ahead should be gone). A waiting task whose caller gave up (its signal aborted)
 * leaves the line without running. Under a burst (a reconnect storm's Syncs), tasks finish at a
 * steady rate, first come first served, instead of all slowing down together until every
 * caller's deadline has passed.
 */
export class Gate {
  private active = 0;
  private readonly waiting: { start: () => void }[] = [];
  /** How long a task takes lately, ms (exponentially weighted; 0 until one has finished). */
  private duration = 0;

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
    private readonly what: string,
  ) {}

  /** Runs the task when its turn comes (or refuses it at once when the line is full). */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.active < this.concurrency) this.active++;
    else {
      if (this.waiting.length >= this.maxWaiting) {
        // Come back when the line ahead should be gone (it moves `concurrency` tasks per task
        // duration), spread out so the returns do not bunch up.
        const drainMs = (this.waiting.length * this.duration) / this.concurrency;
        throw busy(`${this.what}: too many at once, retry after the hint`, Math.min(Math.max(drainMs, 500), 30_000) * (0.5 + Math.random()));
      }
      await new Promise<void>((resolve, reject) => {
        const entry = {
          start: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(ConnectError.from(signal?.reason));
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiting.push(entry);
      });
    }
    const started = performance.now();
    try {
      return await task();
    } finally {
      const took = performance.now() - started;
      this.duration = this.duration === 0 ? took : this.duration * 0.9 + took * 0.1;
      // The slot passes to the next one waiting, or frees up.
      const next = this.waiting.shift();
      if (next !== undefined) next.start();
      else this.active--;
    }
  }
}
