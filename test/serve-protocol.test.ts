import { execFileSync } from 'child_process';
import * as zlib from 'zlib';
import type { IncomingHttpHeaders } from 'http';
import {
  ProtocolError,
  parseInferRequest,
  encodeInferResponse,
  decodeInferResponse,
  encodeInferRequest,
  responseTensors,
  parseJson,
  jsonNumberArray,
  ResponseTensor,
} from '../src/protocol/kserve';
import { formatCFloat, topClasses } from '../src/protocol/classification';

/** A JSON request body with one input. */
function jsonBody(datatype: string, data: unknown, shape: number[] = [Array.isArray(data) ? data.length : 1], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape, datatype, data }], ...extra }));
}

/** A binary-extension request body with one input whose bytes are `bytes`. */
function binaryBody(datatype: string, bytes: Uint8Array, shape: number[]): { body: Buffer; headerLength: number } {
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape, datatype, parameters: { binary_data_size: bytes.byteLength } }] }));
  return { body: Buffer.concat([head, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]), headerLength: head.length };
}

function parsedData(body: Buffer, headerLength?: number): number[] {
  return Array.from(parseInferRequest(body, headerLength).inputs[0].data);
}

/** `fn` throws a ProtocolError with status 400 whose message matches every pattern. */
function expect400(fn: () => unknown, ...patterns: (RegExp | string)[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).status).toBe(400);
  for (const p of patterns) expect((caught as ProtocolError).message).toMatch(p);
}

describe("input datatypes: converted to the model's FP32 only where nothing is lost", () => {
  test('FP32 is taken as is (JSON numbers round to FP32)', () => {
    expect(parsedData(jsonBody('FP32', [0.1, -2, 1e-7, 3.5]))).toEqual([Math.fround(0.1), -2, Math.fround(1e-7), 3.5]);
  });

  test('FP64: exactly representable values pass, others are a 400 naming input, datatype, element and value', () => {
    expect(parsedData(jsonBody('FP64', [0.5, -1.25, 16777216, 2 ** -20]))).toEqual([0.5, -1.25, 16777216, 2 ** -20]);
    expect400(() => parsedData(jsonBody('FP64', [0.5, 0.1])), 'input "x"', 'FP64', 'element 1 (0.1)', /not exactly representable in FP32/);
    // nested data: the index is the flat, row-major one
    expect400(
      () =>
        parsedData(
          jsonBody(
            'FP64',
            [
              [0.5, 0.25],
              [1, 1e-50],
            ],
            [2, 2],
          ),
        ),
      'element 3 (1e-50)',
    );
    expect400(() => parsedData(jsonBody('FP64', [1e39])), 'element 0 (1e+39)', /not exactly representable/);
  });

  test("integers: JSON integers within the type's range and exact in FP32", () => {
    expect(parsedData(jsonBody('INT32', [16777216, -16777216, 0, 7]))).toEqual([16777216, -16777216, 0, 7]);
    expect400(() => parsedData(jsonBody('INT32', [1, 16777217])), 'input "x"', 'INT32', 'element 1 (16777217)', /not exactly representable in FP32/);
    expect(parsedData(jsonBody('UINT8', [0, 255]))).toEqual([0, 255]);
    expect400(() => parsedData(jsonBody('UINT8', [300])), 'input "x"', 'UINT8 element 0 (300)', 'out of the UINT8 range [0, 255]');
    expect400(() => parsedData(jsonBody('UINT8', [-1])), 'UINT8 element 0 (-1)', 'range');
    expect400(() => parsedData(jsonBody('INT8', [127, 128])), 'INT8 element 1 (128)', 'range [-128, 127]');
    expect(parsedData(jsonBody('INT8', [-128, 127]))).toEqual([-128, 127]);
    expect(parsedData(jsonBody('INT16', [-32768, 32767]))).toEqual([-32768, 32767]);
    expect(parsedData(jsonBody('UINT16', [65535]))).toEqual([65535]);
    expect(parsedData(jsonBody('UINT32', [16777216]))).toEqual([16777216]);
    expect400(() => parsedData(jsonBody('UINT32', [4294967295])), 'UINT32 element 0 (4294967295)', /not exactly representable/);
    expect(parsedData(jsonBody('INT64', [-5, 2 ** 40]))).toEqual([-5, 2 ** 40]);
    expect400(() => parsedData(jsonBody('INT64', [1, 2, 2.5])), 'input "x"', 'INT64 element 2 (2.5)', 'is not an integer');
    // past 2^53 JSON.parse has rounded the client's integer: refused, not guessed
    expect400(() => parsedData(jsonBody('INT64', [2 ** 60])), 'INT64 element 0', /beyond ±2\^53/, /binary/);
    expect400(() => parsedData(jsonBody('INT32', [true])), 'INT32 element 0 (true)', 'is not a number');
  });

  test('BOOL in JSON is true/false (as Triton reads it), not 0/1', () => {
    expect(parsedData(jsonBody('BOOL', [true, false, true]))).toEqual([1, 0, 1]);
    expect400(() => parsedData(jsonBody('BOOL', [true, 1])), 'BOOL element 1 (1)', 'is not true or false');
    expect400(() => parsedData(jsonBody('BOOL', ['true'])), 'BOOL element 0 ("true")');
  });

  test('FP16, BF16 and BYTES are refused naming the input; so is a datatype the protocol does not have', () => {
    for (const dt of ['FP16', 'BF16', 'BYTES']) expect400(() => parsedData(jsonBody(dt, [1])), 'input "x"', `datatype ${dt} is not supported`);
    expect400(
      () => parsedData(binaryBody('FP16', new Uint8Array(2), [1]).body, binaryBody('FP16', new Uint8Array(2), [1]).headerLength),
      'input "x"',
      'datatype FP16 is not supported',
    );
    for (const dt of ['FLOAT', 'constructor', '__proto__', 'toString'])
      expect400(() => parsedData(jsonBody(dt, [1])), 'input "x"', `datatype ${dt} is not supported`, 'not a KServe v2 datatype');
  });

  test('a value of the wrong JSON type, missing data and absurd nesting are 400s', () => {
    expect400(() => parsedData(jsonBody('FP32', [1, 'a'])), 'FP32 element 1 ("a")', 'is not a number');
    expect400(() => parsedData(jsonBody('FP32', [null])), 'FP32 element 0 (null)');
    expect400(
      () => parseInferRequest(Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32' }] })), undefined),
      'input "x" has neither "data" nor parameters.binary_data_size',
    );
    let deep: unknown = [1];
    for (let i = 0; i < 150; i++) deep = [deep];
    expect400(() => parsedData(jsonBody('FP32', deep, [1])), 'nests deeper than 100');
    // a scalar "data" is one element (Triton reads it so too)
    expect(parsedData(jsonBody('FP32', 2.5, [1]))).toEqual([2.5]);
  });

  test('binary data: the same rules, read in the declared datatype', () => {
    const f64 = (xs: number[]) => new Uint8Array(Float64Array.from(xs).buffer);
    let b = binaryBody('FP64', f64([0.5, -3, Infinity, NaN]), [4]);
    const got = parsedData(b.body, b.headerLength);
    expect(got.slice(0, 3)).toEqual([0.5, -3, Infinity]);
    expect(got[3]).toBeNaN();
    b = binaryBody('FP64', f64([0.5, 0.1]), [2]);
    expect400(() => parsedData(b.body, b.headerLength), 'input "x"', 'FP64 element 1 (0.1)', /not exactly representable/);

    b = binaryBody('INT32', new Uint8Array(Int32Array.from([16777216, -3]).buffer), [2]);
    expect(parsedData(b.body, b.headerLength)).toEqual([16777216, -3]);
    b = binaryBody('INT32', new Uint8Array(Int32Array.from([0, 16777217]).buffer), [2]);
    expect400(() => parsedData(b.body, b.headerLength), 'INT32 element 1 (16777217)');
    b = binaryBody('UINT32', new Uint8Array(Uint32Array.from([4294967295]).buffer), [1]);
    expect400(() => parsedData(b.body, b.headerLength), 'UINT32 element 0 (4294967295)');

    b = binaryBody('UINT8', Uint8Array.from([0, 255, 7]), [3]);
    expect(parsedData(b.body, b.headerLength)).toEqual([0, 255, 7]);
    b = binaryBody('INT8', new Uint8Array(Int8Array.from([-128, 127]).buffer), [2]);
    expect(parsedData(b.body, b.headerLength)).toEqual([-128, 127]);
    b = binaryBody('INT16', new Uint8Array(Int16Array.from([-32768, 5]).buffer), [2]);
    expect(parsedData(b.body, b.headerLength)).toEqual([-32768, 5]);
    b = binaryBody('UINT16', new Uint8Array(Uint16Array.from([65535]).buffer), [1]);
    expect(parsedData(b.body, b.headerLength)).toEqual([65535]);

    b = binaryBody('BOOL', Uint8Array.from([1, 0, 1]), [3]);
    expect(parsedData(b.body, b.headerLength)).toEqual([1, 0, 1]);
    b = binaryBody('BOOL', Uint8Array.from([1, 2]), [2]);
    expect400(() => parsedData(b.body, b.headerLength), 'BOOL element 1 (2)', 'is not 0 or 1');

    b = binaryBody('FP64', f64([0.5]), [2]);
    expect400(() => parsedData(b.body, b.headerLength), 'binary data has 8 bytes, shape and FP64 need 16');
  });

  test('binary INT64/UINT64 are checked exactly, past 2^53 too', () => {
    const i64 = (xs: bigint[]) => new Uint8Array(BigInt64Array.from(xs).buffer);
    const u64 = (xs: bigint[]) => new Uint8Array(BigUint64Array.from(xs).buffer);
    let b = binaryBody('INT64', i64([-5n, 16777216n, 2n ** 60n, -(2n ** 63n), 3n * 2n ** 40n]), [5]);
    expect(parsedData(b.body, b.headerLength)).toEqual([-5, 16777216, 2 ** 60, -(2 ** 63), 3 * 2 ** 40]);
    b = binaryBody('INT64', i64([1n, 16777217n]), [2]);
    expect400(() => parsedData(b.body, b.headerLength), 'input "x"', 'INT64 element 1 (16777217)', /not exactly representable/);
    // 2^53 + 1 is 2^53 as a Number, and 2^53 is exact in FP32: only a BigInt comparison sees the difference
    b = binaryBody('INT64', i64([2n ** 53n + 1n]), [1]);
    expect400(() => parsedData(b.body, b.headerLength), 'INT64 element 0 (9007199254740993)');
    b = binaryBody('INT64', i64([2n ** 62n + 2n ** 38n]), [1]);
    expect400(() => parsedData(b.body, b.headerLength), 'INT64 element 0 (4611686293305294848)');
    b = binaryBody('UINT64', u64([2n ** 63n, 7n]), [2]);
    expect(parsedData(b.body, b.headerLength)).toEqual([2 ** 63, 7]);
    b = binaryBody('UINT64', u64([2n ** 64n - 1n]), [1]);
    expect400(() => parsedData(b.body, b.headerLength), 'UINT64 element 0 (18446744073709551615)');
  });

  test('binary FP32 stays a view of the body when 4-byte aligned', () => {
    const x = Float32Array.from([1.5, NaN, -Infinity, 0.1]);
    const req = encodeInferRequest([{ name: 'x', shape: [4], data: x }]);
    const pad = (4 - (req.headerLength % 4)) % 4;
    const body = Buffer.alloc(pad + req.body.length).subarray(pad);
    req.body.copy(body);
    const t = parseInferRequest(body, req.headerLength).inputs[0];
    expect(t.data.buffer).toBe(body.buffer);
    expect(Array.from(t.data)).toEqual(Array.from(x));
    expect(t.datatype).toBe('FP32');
  });
});

describe('NaN and infinities in JSON, as Triton writes and reads them', () => {
  const tricky = Float32Array.from([NaN, Infinity, -Infinity, -0, 1.5, 0.1]);

  test('a JSON response writes bare NaN, Infinity, -Infinity (not null) and -0.0; decodeInferResponse reads them back', () => {
    const enc = encodeInferResponse('m', '1', 'r', [{ name: 'y', shape: [2, 3], data: tricky, binary: false }]);
    expect(enc.headerLength).toBeUndefined();
    const text = enc.body.toString();
    expect(text).toContain(`"data":[NaN,Infinity,-Infinity,-0.0,1.5,${Math.fround(0.1)}]`);
    expect(text).not.toContain('null');
    expect(() => JSON.parse(text)).toThrow(); // strict parsers refuse it: the documented trade
    const out = decodeInferResponse(enc.body, undefined).outputs[0];
    expect(out).toMatchObject({ name: 'y', shape: [2, 3], datatype: 'FP32' });
    expect(out.data[0]).toBeNaN();
    expect(Array.from(out.data.slice(1, 3))).toEqual([Infinity, -Infinity]);
    expect(Object.is(out.data[3], -0)).toBe(true);
    expect(Array.from(out.data.slice(4))).toEqual([1.5, Math.fround(0.1)]);
    // finite arrays are plain JSON, as before
    expect(jsonNumberArray(Float32Array.from([1, 0.5, -2]))).toBe('[1,0.5,-2]');
  });

  test("Python's json module (an independent parser) reads the response, and its output is read by us", () => {
    const enc = encodeInferResponse('m', '1', undefined, [{ name: 'y', shape: [6], data: tricky, binary: false }]);
    const py = 'import json,sys,math; d=json.load(sys.stdin)["outputs"][0]["data"]; print(json.dumps([repr(v) for v in d]))';
    const read = JSON.parse(execFileSync('python3', ['-c', py], { input: enc.body, encoding: 'utf8' }));
    expect(read).toEqual(['nan', 'inf', '-inf', '-0.0', '1.5', String(Math.fround(0.1))]);
    // and a body written by Python's json.dumps (NaN, Infinity, -Infinity) is a valid request here
    const body = execFileSync('python3', [
      '-c',
      'import json; print(json.dumps({"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[float("nan"),float("inf"),-float("inf"),0.25]}]}))',
    ]);
    const got = parsedData(body);
    expect(got[0]).toBeNaN();
    expect(got.slice(1)).toEqual([Infinity, -Infinity, 0.25]);
  });

  test('a request may carry every token rapidjson reads (NaN, Inf, Infinity, each with -) for FP32 and FP64', () => {
    const text =
      '{"id":"NaN Infinity -Inf","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[NaN, -NaN, Inf],[-Inf, Infinity, -Infinity]]},' +
      '{"name":"z","shape":[3],"datatype":"FP64","data":[NaN,-Infinity,0.5]}]}';
    const req = parseInferRequest(Buffer.from(text), undefined);
    expect(req.id).toBe('NaN Infinity -Inf'); // tokens inside strings are text
    const [x, z] = req.inputs.map((t) => Array.from(t.data));
    expect(x[0]).toBeNaN();
    expect(x[1]).toBeNaN();
    expect(x.slice(2)).toEqual([Infinity, -Infinity, Infinity, -Infinity]);
    expect(z[0]).toBeNaN();
    expect(z.slice(1)).toEqual([-Infinity, 0.5]);
  });

  test('the tokens are numbers only where a number may stand, and only for float datatypes', () => {
    const body = (data: string, datatype = 'FP32') => Buffer.from(`{"inputs":[{"name":"x","shape":[1],"datatype":"${datatype}","data":${data}}]}`);
    expect400(() => parseInferRequest(body('[NaN]', 'INT32'), undefined), 'INT32 element 0 (NaN)', 'is not an integer');
    expect400(() => parseInferRequest(body('[Infinity]', 'UINT8'), undefined), 'UINT8 element 0 (Infinity)');
    expect400(() => parseInferRequest(body('[NaN]', 'BOOL'), undefined), 'BOOL element 0 (NaN)');
    for (const bad of ['[Infinit]', '[NaNa]', '[nan]', '[- Infinity]', '[+Infinity]', '[1NaN]'])
      expect400(() => parseInferRequest(body(bad), undefined), 'malformed JSON');
    // a token is not a key
    expect400(
      () => parseInferRequest(Buffer.from('{NaN: 1, "inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[NaN]}]}'), undefined),
      'malformed JSON',
    );
    // nor can a string pass for a NaN token
    expect400(() => parseInferRequest(body('[NaN, "\\u0000modelship:NaN"]'), undefined), 'malformed JSON');
    expect400(() => parseInferRequest(body('["\\u0000modelship:NaN"]'), undefined), 'FP32 element 0', 'is not a number');
    expect(parseJson('[NaN, {"a": [Inf]}]')).toEqual([NaN, { a: [Infinity] }]);
    expect(parseJson('NaN')).toBeNaN();
  });
});

describe('classification extension', () => {
  // two batch items, four classes each
  const probs = Float32Array.from([0.1, 0.7, 0.05, 0.15, 0.25, 0.25, 0.5, NaN]);
  const results = { prob: { data: probs, shape: [2, 4] }, fc: { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] } };

  test('top N per batch item, "<value>:<index>" with %f values, shape [batch, N], BYTES, as JSON strings', () => {
    const req = parseInferRequest(jsonBody('FP32', [1], [1], { outputs: [{ name: 'prob', parameters: { classification: 3 } }] }), undefined);
    expect(req.outputs).toEqual([{ name: 'prob', binary: undefined, classification: 3 }]);
    const t = responseTensors(results, req.outputs, false);
    expect(t).toEqual([
      {
        name: 'prob',
        datatype: 'BYTES',
        shape: [2, 3],
        binary: false,
        // ties: lower index first; NaN after every number
        data: ['0.700000:1', '0.150000:3', '0.100000:0', '0.500000:2', '0.250000:0', '0.250000:1'],
      },
    ]);
    const enc = encodeInferResponse('m', '1', undefined, t);
    expect(JSON.parse(enc.body.toString()).outputs[0]).toEqual({ name: 'prob', datatype: 'BYTES', shape: [2, 3], data: t[0].data });
    const dec = decodeInferResponse(enc.body, enc.headerLength).outputs[0];
    expect(dec).toMatchObject({ name: 'prob', datatype: 'BYTES', shape: [2, 3], strings: t[0].data });
    expect(dec.data.length).toBe(0);
  });

  test('with labels, "<value>:<index>:<label>" (an index past the labels has none)', () => {
    const t = responseTensors(results, [{ name: 'prob', classification: 2 }], false, ['cat', 'dog', 'ünïcode bird']);
    expect(t[0].data).toEqual(['0.700000:1:dog', '0.150000:3', '0.500000:2:ünïcode bird', '0.250000:0:cat']);
  });

  test('binary output: each element a 4-byte little-endian length and its UTF-8 bytes', () => {
    const t = responseTensors(results, [{ name: 'prob', classification: 2, binary: true }, { name: 'fc' }], false, ['cat', 'dog', 'ünïcode bird']);
    const enc = encodeInferResponse('m', '1', undefined, t);
    expect(enc.headerLength).toBeDefined();
    const head = JSON.parse(enc.body.subarray(0, enc.headerLength).toString());
    const strings = ['0.700000:1:dog', '0.150000:3', '0.500000:2:ünïcode bird', '0.250000:0:cat'];
    const expected = Buffer.concat(
      strings.flatMap((s) => {
        const b = Buffer.from(s, 'utf8');
        const len = Buffer.alloc(4);
        len.writeUInt32LE(b.length);
        return [len, b];
      }),
    );
    expect(head.outputs[0]).toEqual({ name: 'prob', datatype: 'BYTES', shape: [2, 2], parameters: { binary_data_size: expected.length } });
    expect(enc.body.subarray(enc.headerLength)).toEqual(expected);
    // the unclassified output alongside stays FP32 JSON
    expect(head.outputs[1]).toEqual({ name: 'fc', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] });
    const dec = decodeInferResponse(enc.body, enc.headerLength).outputs;
    expect(dec[0].strings).toEqual(strings);
    expect(Array.from(dec[1].data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test("Triton's documented example: [1.1, 3.3, 0.5, 2.4], top 2, no batch dimension", () => {
    const t = responseTensors(
      { output0: { data: Float32Array.from([1.1, 3.3, 0.5, 2.4]), shape: [4] } },
      [{ name: 'output0', classification: 2 }],
      false,
      undefined,
      { batched: false },
    );
    // the document shows "3.3:1", "2.4:3"; Triton's server writes std::to_string(float), six decimals
    expect(t[0]).toMatchObject({ datatype: 'BYTES', shape: [2], data: ['3.300000:1', '2.400000:3'] });
  });

  test('the class count is the elements of one batch item; N outside 1..count is a 400 naming the output', () => {
    const caffe = { prob: { data: Float32Array.from({ length: 20 }, (_, i) => i % 10), shape: [2, 10, 1, 1] } };
    expect(responseTensors(caffe, [{ name: 'prob', classification: 10 }], false)[0].shape).toEqual([2, 10]);
    expect400(() => responseTensors(caffe, [{ name: 'prob', classification: 11 }], false), 'output "prob"', 'classification 11 is out of range', '1 to 10');
    for (const bad of [0, -1, 2.5, '2', true, null]) {
      expect400(
        () => parseInferRequest(jsonBody('FP32', [1], [1], { outputs: [{ name: 'prob', parameters: { classification: bad } }] }), undefined),
        'output "prob"',
        '"classification" must be a positive integer',
      );
    }
    expect400(() => responseTensors(caffe, [{ name: 'nope' }], false), 'unknown output "nope"');
  });

  test("values are C's %f (glibc: exact value, half to even), checked against Python's %-formatting", () => {
    const values = [
      0.75,
      Math.fround(3.3),
      0.0078125,
      0.0234375,
      2.5e-6,
      1.5e-6,
      -1e-9,
      3.4e38,
      Math.fround(3.4e38),
      1e-45,
      123456.789,
      0.5,
      1,
      -7.25,
      Math.fround(0.1),
    ];
    const py = 'import sys,json; print(json.dumps(["%f" % v for v in json.load(sys.stdin)]))';
    const expected = JSON.parse(execFileSync('python3', ['-c', py], { input: JSON.stringify(values), encoding: 'utf8' }));
    expect(values.map((v) => formatCFloat(v))).toEqual(expected);
    expect(formatCFloat(0.0078125)).toBe('0.007812'); // a tie, to even (JavaScript's toFixed would say 0.007813)
    expect(formatCFloat(-0)).toBe('-0.000000');
    expect([formatCFloat(NaN), formatCFloat(NaN, true), formatCFloat(Infinity), formatCFloat(-Infinity)]).toEqual(['nan', '-nan', 'inf', '-inf']);
    // a NaN's sign comes from its bits (x86's default NaN has the sign bit set)
    const nan = new Float32Array(new Uint32Array([0xffc00000, 0x7fc00000]).buffer);
    expect(responseTensors({ y: { data: nan, shape: [1, 2] } }, [{ name: 'y', classification: 2 }], false)[0].data).toEqual(['-nan:0', 'nan:1']);
  });

  test('a large N sorts; a small one selects; both give the same order', () => {
    const d = Float32Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) / 10);
    const all = topClasses(d, 0, 1000, 1000);
    expect(topClasses(d, 0, 1000, 64)).toEqual(all.slice(0, 64));
    expect(topClasses(d, 0, 1000, 100)).toEqual(all.slice(0, 100));
    for (let i = 1; i < all.length; i++) expect(d[all[i - 1]] >= d[all[i]]).toBe(true);
  });
});

describe('binary_data per output', () => {
  test("a per-output binary_data overrides binary_data_output either way; absent, the request's setting holds", () => {
    const results = {
      a: { data: Float32Array.from([1, 2]), shape: [1, 2] },
      b: { data: Float32Array.from([3, NaN]), shape: [1, 2] },
      c: { data: Float32Array.from([5]), shape: [1, 1] },
    };
    const outputs = [{ name: 'a', parameters: { binary_data: false } }, { name: 'b' }, { name: 'c', parameters: { binary_data: true } }];
    let req = parseInferRequest(jsonBody('FP32', [1], [1], { outputs, parameters: { binary_data_output: true } }), undefined);
    expect(req.binaryOutputs).toBe(true);
    expect(req.outputs.map((o) => o.binary)).toEqual([false, undefined, true]);
    let t: ResponseTensor[] = responseTensors(results, req.outputs, req.binaryOutputs);
    expect(t.map((o) => o.binary)).toEqual([false, true, true]);
    const enc = encodeInferResponse('m', '1', undefined, t);
    const head = JSON.parse(enc.body.subarray(0, enc.headerLength).toString());
    expect(head.outputs[0]).toEqual({ name: 'a', datatype: 'FP32', shape: [1, 2], data: [1, 2] });
    expect(head.outputs[1]).toEqual({ name: 'b', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } });
    expect(head.outputs[2]).toEqual({ name: 'c', datatype: 'FP32', shape: [1, 1], parameters: { binary_data_size: 4 } });
    const dec = decodeInferResponse(enc.body, enc.headerLength).outputs;
    expect(Array.from(dec[0].data)).toEqual([1, 2]);
    expect(dec[1].data[0]).toBe(3);
    expect(dec[1].data[1]).toBeNaN();
    expect(Array.from(dec[2].data)).toEqual([5]);

    // without binary_data_output, only c is binary; and no outputs named: all, JSON
    req = parseInferRequest(jsonBody('FP32', [1], [1], { outputs }), undefined);
    expect(responseTensors(results, req.outputs, req.binaryOutputs).map((o) => o.binary)).toEqual([false, false, true]);
    t = responseTensors(results, [], false);
    expect(t.map((o) => [o.name, o.binary])).toEqual([
      ['a', false],
      ['b', false],
      ['c', false],
    ]);
  });

  test('encodeInferRequest can ask for outputs, with binary_data and classification', () => {
    const req = encodeInferRequest([{ name: 'x', shape: [1, 2], data: Float32Array.from([1, 2]) }], {
      binaryOutputs: true,
      outputs: [
        { name: 'prob', classification: 5 },
        { name: 'fc', binary: false },
      ],
    });
    const parsed = parseInferRequest(req.body, req.headerLength);
    expect(parsed.binaryOutputs).toBe(true);
    expect(parsed.outputs).toEqual([
      { name: 'prob', binary: undefined, classification: 5 },
      { name: 'fc', binary: false },
    ]);
  });
});

describe('over HTTP: the server answers as the protocol says', () => {
  // the pure functions above, as the server wires them: a LeNet served in-process, requests over 127.0.0.1
  /* eslint-disable @typescript-eslint/no-require-imports -- this block's own modules, required with it: the pure-function tests above load none of them */
  const fs = require('fs') as typeof import('fs');
  const path = require('path') as typeof import('path');
  const http = require('http') as typeof import('http');
  const { convertCaffe } = require('../src/convert/converter') as typeof import('../src/convert/converter');
  const { startServer, DEFAULT_SERVE } = require('../src/serve/server') as typeof import('../src/serve/server');
  const { FIXTURES, tmpDir } = require('./helpers/caffe') as typeof import('./helpers/caffe');
  /* eslint-enable @typescript-eslint/no-require-imports -- the block's modules end here */
  let srv: Awaited<ReturnType<typeof startServer>>;
  const labels = Array.from({ length: 10 }, (_, i) => `digit-${i}`);
  beforeAll(async () => {
    const d = path.join(FIXTURES, 'lenet');
    const model = path.join(tmpDir(), 'lenet.onnx');
    fs.writeFileSync(
      model,
      convertCaffe({
        prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
        prototxtFile: 'p',
        caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
        caffemodelFile: 'w',
      }).onnx,
    );
    srv = await startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, modelPath: model, modelName: 'lenet', labels, log: () => undefined });
  });
  afterAll(() => srv.drain());
  const post = (body: Buffer, headers: Record<string, string | number> = {}) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const r = http.request(`${srv.url}/v2/models/lenet/infer`, { method: 'POST', headers: { 'content-length': body.length, ...headers } }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (x: Buffer) => c.push(x));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(c) }));
      });
      r.on('error', reject);
      r.end(body);
    });
  const pixels = (n: number) => Array.from({ length: n * 784 }, (_, i) => ((i * 37) % 256) / 255);

  test('classification: top 3 per item as labelled strings, JSON and binary, agreeing with the raw probabilities', async () => {
    const data = pixels(2);
    const raw = await post(Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [2, 1, 28, 28], datatype: 'FP32', data }] })));
    expect(raw.status).toBe(200);
    const prob = decodeInferResponse(raw.body, undefined).outputs[0];
    const cls = await post(
      Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'data', shape: [2, 1, 28, 28], datatype: 'FP32', data }],
          outputs: [{ name: 'prob', parameters: { classification: 3 } }],
        }),
      ),
    );
    expect(cls.status).toBe(200);
    const out = (JSON.parse(cls.body.toString()) as { outputs: { name: string; datatype: string; shape: number[]; data: string[] }[] }).outputs[0];
    expect(out).toMatchObject({ name: 'prob', datatype: 'BYTES', shape: [2, 3] });
    for (let b = 0; b < 2; b++) {
      const want = topClasses(prob.data, b * 10, 10, 3).map((i) => `${formatCFloat(prob.data[b * 10 + i])}:${i}:digit-${i}`);
      expect(out.data.slice(b * 3, b * 3 + 3)).toEqual(want);
    }
    const req = encodeInferRequest([{ name: 'data', shape: [2, 1, 28, 28], data: Float32Array.from(data) }], {
      outputs: [{ name: 'prob', binary: true, classification: 3 }],
    });
    const bin = await post(req.body, { 'inference-header-content-length': req.headerLength });
    expect(bin.status).toBe(200);
    const dec = decodeInferResponse(bin.body, Number(bin.headers['inference-header-content-length'])).outputs[0];
    expect(dec.datatype).toBe('BYTES');
    expect(dec.strings).toEqual(out.data);
  });

  test("Content-Encoding gzip and deflate (tritonclient's request_compression_algorithm): the whole body inflated, JSON and binary, answered as uncompressed", async () => {
    const data = pixels(2);
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [2, 1, 28, 28], datatype: 'FP32', data }] }));
    const bin = encodeInferRequest([{ name: 'data', shape: [2, 1, 28, 28], data: Float32Array.from(data) }], {
      binaryOutputs: true,
      outputs: [{ name: 'prob' }],
    });
    const plainJson = await post(json);
    const plainBin = await post(bin.body, { 'inference-header-content-length': bin.headerLength });
    expect([plainJson.status, plainBin.status]).toEqual([200, 200]);
    const probs = decodeInferResponse(plainJson.body, undefined).outputs[0].data;
    for (const [coding, compress] of [
      ['gzip', zlib.gzipSync],
      ['deflate', zlib.deflateSync],
      ['GZip', zlib.gzipSync],
      ['x-gzip', zlib.gzipSync],
    ] as const) {
      const j = await post(compress(json), { 'content-encoding': coding });
      expect({ coding, status: j.status }).toEqual({ coding, status: 200 });
      expect(j.body.toString()).toBe(plainJson.body.toString());
      // Inference-Header-Content-Length is the UNCOMPRESSED JSON part's length, as tritonclient sends it
      const b = await post(compress(bin.body), { 'content-encoding': coding, 'inference-header-content-length': bin.headerLength });
      expect({ coding, status: b.status }).toEqual({ coding, status: 200 });
      expect(b.body).toEqual(plainBin.body);
      expect(Array.from(decodeInferResponse(b.body, Number(b.headers['inference-header-content-length'])).outputs[0].data)).toEqual(Array.from(probs));
    }
    // as Triton (zlib's inflateInit2 with 15|32), the format is told from the data: gzip sent as "deflate" is read too
    expect((await post(zlib.gzipSync(json), { 'content-encoding': 'deflate' })).body.toString()).toBe(plainJson.body.toString());
    // identity is the body as sent; and a compressed body sent chunked (no Content-Length) is inflated as well
    expect((await post(json, { 'content-encoding': 'identity' })).body.toString()).toBe(plainJson.body.toString());
    const chunked = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const r = http.request(
        `${srv.url}/v2/models/lenet/infer`,
        { method: 'POST', headers: { 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' } },
        (res) => {
          const c: Buffer[] = [];
          res.on('data', (x: Buffer) => c.push(x));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(c) }));
        },
      );
      r.on('error', reject);
      const z = zlib.gzipSync(json);
      for (let o = 0; o < z.length; o += 1000) r.write(z.subarray(o, o + 1000));
      r.end();
    });
    expect(chunked.status).toBe(200);
    expect(chunked.body.toString()).toBe(plainJson.body.toString());
  });

  test('a Content-Encoding the server does not read is 501 naming it, with Accept-Encoding (as Triton); corrupt or truncated data is 400 naming the coding', async () => {
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: pixels(1) }] }));
    for (const coding of ['br', 'compress', 'zstd', 'gzip, gzip']) {
      const r = await post(coding === 'br' ? zlib.brotliCompressSync(json) : json, { 'content-encoding': coding });
      expect({ coding, status: r.status }).toEqual({ coding, status: 501 });
      expect(r.headers['accept-encoding']).toBe('gzip, deflate');
      expect(JSON.parse(r.body.toString()).error).toContain(`Content-Encoding "${coding}" is not supported`);
    }
    const gz = zlib.gzipSync(json);
    const flipped = Buffer.from(gz);
    flipped[gz.length - 6] ^= 0xff; // the CRC no longer matches
    for (const [coding, body, why] of [
      ['gzip', json, /incorrect header check/],
      ['deflate', zlib.deflateRawSync(json), /incorrect header check/], // raw deflate, no zlib header: Triton does not read it either
      ['gzip', gz.subarray(0, gz.length >> 1), /unexpected end of file/],
      ['gzip', flipped, /incorrect data check/],
      ['gzip', Buffer.alloc(0), /unexpected end of file/],
    ] as const) {
      const r = await post(body, { 'content-encoding': coding });
      expect({ coding, why: String(why), status: r.status }).toEqual({ coding, why: String(why), status: 400 });
      const error = JSON.parse(r.body.toString()).error as string;
      expect(error).toContain(`not valid ${coding} data`);
      expect(error).toMatch(why);
    }
    // and the server goes on serving
    expect((await post(gz, { 'content-encoding': 'gzip' })).status).toBe(200);
  });

  test('datatypes: lossless conversions are served, lossy ones are 400 naming the input (never silently coerced)', async () => {
    const ints = Array.from({ length: 784 }, (_, i) => i % 256);
    const asUint8 = await post(Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'UINT8', data: ints }] })));
    const asFp32 = await post(Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: ints }] })));
    expect(asUint8.status).toBe(200);
    expect(asUint8.body.toString()).toBe(asFp32.body.toString());
    for (const [datatype, bad, msg] of [
      ['UINT8', 300, /UINT8/],
      ['INT64', 2.5, /INT64/],
      ['FP64', 0.1, /not exactly representable in FP32/],
      ['INT32', 16777217, /not exactly representable in FP32/],
    ] as const) {
      const data = ints.slice();
      data[5] = bad;
      const r = await post(Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype, data }] })));
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body.toString()).error).toMatch(msg);
      expect(JSON.parse(r.body.toString()).error).toMatch(/input "data"/);
    }
  });
});
