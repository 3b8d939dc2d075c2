/**
 * `spotify-batch/emulator`: a Spotify-compatible Web API on loopback, with fault injection, for
 * offline runs and tests of code that calls Spotify (see SPOTIFY_API.md in the repository).
 */
export { FAULT_KINDS, type FaultKind, type FaultRule, parseFault } from './faults.ts';
export {
  Emulator,
  type EmulatorOptions,
  type EmulatorStats,
  type RequestRecord,
  startEmulator,
} from './server.ts';
