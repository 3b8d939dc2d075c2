import type { Writable } from 'node:stream';
import type { SinkResult, StagedSink } from '../core/sink.ts';

/**
 * Standard output. It cannot be staged: bytes reach the reader as they are written, and on
 * failure the caller learns from the exit status. A reader that goes away early (`| head`) shows
 * up as EPIPE, which the run treats as a normal end.
 */
export class StdoutSink implements StagedSink {
  readonly location = '-';
  readonly writable: Writable;
  readonly staged = Promise.resolve();

  constructor(stream: Writable = process.stdout) {
    this.writable = stream;
  }

  async publish(): Promise<SinkResult> {
    return { location: '-' };
  }

  async discard(): Promise<void> {}
}
