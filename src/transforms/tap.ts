import { Transform, type TransformCallback } from 'node:stream';
import type { SourceItem } from '../core/records.ts';

/**
 * Objects → the same objects, each shown to `see` on the way (the report's aggregates: pages
 * as listed, albums as written). `see` must not throw or keep the object beyond the call; the
 * stream's backpressure is untouched.
 */
export class Tap<T = SourceItem> extends Transform {
  readonly #see: (chunk: T) => void;

  /** @param highWaterMark objects buffered on each side (1 for pages, whose window is bounded). */
  constructor(see: (chunk: T) => void, highWaterMark = 16) {
    super({ objectMode: true, highWaterMark });
    this.#see = see;
  }

  override _transform(chunk: T, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#see(chunk);
    callback(null, chunk);
  }
}
