// A small time-bounded cache (member lists, edge addresses): a value is loaded on a miss and kept
// for ttlMs.
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.until > this.now()) return hit.value;
    const value = await load();
    this.entries.set(key, { value, until: this.now() + this.ttlMs });
    return value;
  }

  /** Replaces a value, keeping its expiry (or starting one). */
  set(key: string, value: V): void {
    this.entries.set(key, { value, until: this.entries.get(key)?.until ?? this.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
