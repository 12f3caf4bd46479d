import { status as Code } from '@grpc/grpc-js';

/**
 * gRPC status codes and HTTP statuses, as google.rpc.Code's "HTTP Mapping" pairs them (googleapis
 * google/rpc/code.proto): the error table (errors.ts) answers a gRPC call with the code of the HTTP status the HTTP
 * door answers, and the metrics label a gRPC call's code with its HTTP status, so that `code` means one thing on
 * both doors (the rollout's error rate, code=~"5..", counts both).
 */
const HTTP_OF_CODE = new Map<Code, number>([
  [Code.OK, 200],
  [Code.CANCELLED, 499],
  [Code.UNKNOWN, 500],
  [Code.INVALID_ARGUMENT, 400],
  [Code.DEADLINE_EXCEEDED, 504],
  [Code.NOT_FOUND, 404],
  [Code.ALREADY_EXISTS, 409],
  [Code.PERMISSION_DENIED, 403],
  [Code.UNAUTHENTICATED, 401],
  [Code.RESOURCE_EXHAUSTED, 429],
  [Code.FAILED_PRECONDITION, 400],
  [Code.ABORTED, 409],
  [Code.OUT_OF_RANGE, 400],
  [Code.UNIMPLEMENTED, 501],
  [Code.INTERNAL, 500],
  [Code.UNAVAILABLE, 503],
  [Code.DATA_LOSS, 500],
]);

/**
 * The other way, for the statuses the server answers: each the code google.rpc.Code names first for it, and 408
 * (the body's timeout) and 413 (too large) as gRPC's own library reports those (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
 */
const CODE_OF_HTTP = new Map<number, Code>([
  [400, Code.INVALID_ARGUMENT],
  [401, Code.UNAUTHENTICATED],
  [403, Code.PERMISSION_DENIED],
  [404, Code.NOT_FOUND],
  [408, Code.DEADLINE_EXCEEDED],
  [409, Code.ALREADY_EXISTS],
  [413, Code.RESOURCE_EXHAUSTED],
  [429, Code.RESOURCE_EXHAUSTED],
  [499, Code.CANCELLED],
  [500, Code.INTERNAL],
  [501, Code.UNIMPLEMENTED],
  [503, Code.UNAVAILABLE],
  [504, Code.DEADLINE_EXCEEDED],
]);

/** The HTTP status of a gRPC code (500 for one outside the table). */
export function httpStatusOf(code: Code): number {
  return HTTP_OF_CODE.get(code) ?? 500;
}

/** The gRPC code of an HTTP status: the table's; else any other 4xx is the client's (INVALID_ARGUMENT), never INTERNAL. */
export function grpcCodeOf(status: number): Code {
  return CODE_OF_HTTP.get(status) ?? (status >= 400 && status < 500 ? Code.INVALID_ARGUMENT : Code.INTERNAL);
}
