import { status as GrpcCode } from '@grpc/grpc-js';
import { ProtocolError } from '../protocol/kserve';
import { grpcCodeOf } from './grpc/status';

/** The server cannot take this request now (too many bytes in flight): 503 with Retry-After, before its body is read. */
export class Overloaded extends ProtocolError {
  constructor(message: string) {
    super(503, message);
  }
}

/** A request body in a Content-Encoding the server does not read: 501 with Accept-Encoding, as Triton answers it. */
export class UnsupportedEncoding extends ProtocolError {
  constructor(message: string) {
    super(501, message);
  }
}

/** The body did not arrive within the body timeout: 408, and the connection is cut once that is sent. */
export class BodyTimeout extends ProtocolError {
  constructor(message: string) {
    super(408, message);
  }
}

/** The client went away before its body was read: its fault, counted as 499 (nginx's "client closed request"). */
export class ClientGone extends ProtocolError {
  constructor(message = 'the client closed the connection before sending the whole body') {
    super(499, message);
  }
}

/** How the server answers a failed request. */
export interface ErrorAnswer {
  status: number;
  /** the answer's `error` */
  message: string;
  /** headers of its own (RFC 9110's for the status) */
  headers: Record<string, string | number>;
  /** unexpected: its stack trace goes to the log */
  logStack: boolean;
  /** someone is there to read an answer (a client that went away gets none) */
  answered: boolean;
  /** after the answer, the connection is cut at once: a client this slow is not waited for any longer */
  cutAfterAnswer: boolean;
  /** the status of a gRPC call's answer: the kind's own, else the HTTP status's (grpc/status.ts) */
  grpcCode: GrpcCode;
}

/** One kind of error: the class it is an instance of, and what the answer says beyond its status and message. */
interface ErrorKind {
  type: abstract new (...args: never[]) => Error;
  headers?: Record<string, string | number>;
  /** whether its stack trace is logged, by status (default: never) */
  logStack?: (status: number) => boolean;
  /** default true */
  answered?: boolean;
  cutAfterAnswer?: boolean;
  /** its gRPC status, where that is not the HTTP status's */
  grpcCode?: GrpcCode;
}

/**
 * Error type → answer, most specific first (KServe's model server keeps the same map from exception to handler).
 * A ProtocolError is the client's fault or a stated condition, answered with its status and message; anything else
 * is a bug: 500 "internal error", its stack trace logged.
 */
export const ERROR_KINDS: readonly ErrorKind[] = [
  // (Retry-After: a second's wait, by which in-flight bodies have usually been answered); over gRPC it is the
  // status for a resource that has run out, not a 503's UNAVAILABLE (which says the server is down)
  { type: Overloaded, headers: { 'retry-after': 1 }, grpcCode: GrpcCode.RESOURCE_EXHAUSTED },
  // the codings that are read (RFC 9110 12.5.3; Triton sends the same); the client's to fix: no stack trace
  { type: UnsupportedEncoding, headers: { 'accept-encoding': 'gzip, deflate' } },
  { type: BodyTimeout, cutAfterAnswer: true },
  { type: ClientGone, answered: false },
  // a 503 (a stated condition, such as a stopped thread's) is not a bug either, nor a 501 (what the server does not do)
  { type: ProtocolError, logStack: (status) => status >= 500 && status !== 501 && status !== 503 },
  { type: Error, logStack: () => true },
];

/** The answer to `e`, from the first kind it is an instance of. */
export function errorAnswer(e: unknown): ErrorAnswer {
  const kind = ERROR_KINDS.find((k) => e instanceof k.type) ?? ERROR_KINDS[ERROR_KINDS.length - 1];
  const status = e instanceof ProtocolError ? e.status : 500;
  return {
    status,
    message: e instanceof ProtocolError ? e.message : `internal error: ${(e as Error)?.message}`,
    headers: { ...kind.headers },
    logStack: kind.logStack?.(status) ?? false,
    answered: kind.answered ?? true,
    cutAfterAnswer: kind.cutAfterAnswer ?? false,
    grpcCode: kind.grpcCode ?? grpcCodeOf(status),
  };
}
