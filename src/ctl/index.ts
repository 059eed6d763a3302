/**
 * ctl: etcdctl-ts, etcdctl 3.4's command-line client over src/client.
 *
 * Promises:
 * - etcdctl 3.4's commands, global flags and ETCDCTL_* variables; for the
 *   same server state, the same stdout, stderr text ("Error: ..." lines,
 *   clientv3's warnings) and exit codes (1 error, 2 bad connection, 3 invalid
 *   input, 4 bad feature, 5 interrupted, 128 bad arguments).
 * - Printers simple, fields, json (Go's encoding/json of the protobuf
 *   structs), protobuf (the wire bytes) and table (tablewriter's layout), with
 *   --hex; a format a command has no rendering for fails as etcdctl's does.
 */
export { run, handlesInterrupt, globalFlags, rootCommands } from './main.js';
export { Ctl } from './command.js';
export { checkPerf, checkDatascale, type PerfLoad, type DatascaleLoad } from './commands/check.js';
export type { CtlIo, CommandSpec, OfflineOps, MigrateOptions, SnapshotRestoreOptions, SnapshotFileStatus } from './command.js';
export { BufferOutput, CtlExit, ExitCode, type Output } from './output.js';
export { newPrinter, renderTable, memberListTable, SimplePrinter, FieldsPrinter, JsonPrinter, ProtobufPrinter, type Printer, type OutputFormat } from './printer.js';
export { goQuote, jsonString, messageJson, goDuration, humanizeBytes, parseGoDuration, argify, goUnquote, hex16 } from './go-format.js';
export { parseFlags, FlagError, type FlagSpec } from './flags.js';
