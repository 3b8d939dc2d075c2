import { Transform, type TransformCallback } from 'node:stream';
import type { SourceItem } from '../core/records.ts';

/**
 * albums → the same albums, each shown to `see` on the way (the report's aggregates). `see` must
 * not throw or keep the item beyond the call; the stream's backpressure is untouched.
 */
export class Tap extends Transform {
  readonly #see: (item: SourceItem) => void;

  constructor(see: (item: SourceItem) => void) {
    super({ objectMode: true, highWaterMark: 16 });
    this.#see = see;
  }

  override _transform(
    item: SourceItem,
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    this.#see(item);
    callback(null, item);
  }
}
