import { Transform, type TransformCallback } from 'node:stream';

/**
 * Turns taken in a fixed order: turn `i` comes once 0..i-1 are all done. The markets of a
 * `{market}` pull are fetched side by side, but what they claim from each other (the state's
 * first sighting of an album, which `--new-only` writes under one market only) is claimed in
 * `--market` order, so identical inputs give identical outputs whatever order the pages arrive in.
 */
export class Turns {
  readonly #done: Promise<void>[];
  readonly #resolve: (() => void)[] = [];

  constructor(count: number) {
    this.#done = Array.from(
      { length: count },
      (_, i) =>
        new Promise<void>((resolve) => {
          this.#resolve[i] = resolve;
        }),
    );
  }

  /** Resolves once every turn before `index` is done. */
  async before(index: number): Promise<void> {
    await Promise.all(this.#done.slice(0, index));
  }

  /** Turn `index` claims nothing more (it finished, or failed and gave back what it claimed). */
  done(index: number): void {
    this.#resolve[index]?.();
  }
}

/**
 * Holds the items until `turn` resolves, then passes them on. Only the first waits; the stream's
 * backpressure holds the source meanwhile, whose pages already requested (its window) are
 * fetched ahead as usual.
 */
export class AwaitTurn extends Transform {
  #turn: Promise<void> | undefined;

  constructor(turn: Promise<void>) {
    super({ objectMode: true, highWaterMark: 1 });
    this.#turn = turn;
  }

  override _transform(item: unknown, _e: BufferEncoding, callback: TransformCallback): void {
    if (this.#turn === undefined) {
      callback(null, item);
      return;
    }
    this.#turn.then(() => {
      this.#turn = undefined;
      callback(null, item);
    }, callback);
  }
}
