// A FIFO of calls waiting for their reply. Both wire protocols answer in
// request order, so the reply that arrives next always belongs to the oldest
// call. Array + head index: shift() is O(n) on large queues (10,000 pipelined
// increments), this is O(1).

export interface Pending<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

export class PendingQueue<P> {
  #items: (P | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: P): void {
    this.#items.push(item);
  }

  peek(): P | undefined {
    return this.#items[this.#head];
  }

  shift(): P | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Remove and return everything still queued. */
  drain(): P[] {
    const rest = this.#items.slice(this.#head) as P[];
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}
