import { caffeSchema } from '../src/formats/schema/caffe';
import { parseTextFormat, locOf, fieldLocOf, parseFloatLiteral, parseIntLiteral } from '../src/formats/textformat';
import { ModelshipError } from '../src/util/errors';

const Net = () => caffeSchema().lookupType('caffe.NetParameter');
const parse = (src: string) => parseTextFormat(src, Net(), { file: 'net.prototxt', tolerateUnknownIn: ['LayerParameter', 'V1LayerParameter'] });

function expectError(src: string, pattern: RegExp, where: { line: number; column?: number }) {
  let err: unknown;
  try {
    parse(src);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelshipError);
  const e = err as ModelshipError;
  expect(e.message).toMatch(pattern);
  expect(e.location.file).toBe('net.prototxt');
  expect(e.location.line).toBe(where.line);
  if (where.column !== undefined) expect(e.location.column).toBe(where.column);
  expect(e.message.startsWith(`net.prototxt:${where.line}`)).toBe(true);
}

describe('protobuf text format (Caffe prototxt)', () => {
  test('comments, nested messages with and without colon, repeated fields, enums, bools', () => {
    const m = parse(`
      # a comment
      name: "net" # trailing comment
      layer {
        name: "conv"  type: "Convolution"
        bottom: "data" top: "conv"
        convolution_param: { num_output: 8 kernel_size: 3 kernel_size: 5; bias_term: false, engine: CUDNN }
      }
      layer < name: 'pool' type: "Pooling" pooling_param { pool: AVE global_pooling: True } >
    `);
    expect(m.name).toBe('net');
    const layers = m.layer as Record<string, any>[];
    expect(layers).toHaveLength(2);
    expect(layers[0].convolution_param).toEqual({ num_output: 8, kernel_size: [3, 5], bias_term: false, engine: 'CUDNN' });
    expect(layers[1].pooling_param).toEqual({ pool: 'AVE', global_pooling: true });
    expect(locOf(layers[0])).toEqual({ line: 4, column: 13 });
    expect(fieldLocOf(layers[0], 'bottom')).toEqual({ line: 6, column: 9 });
  });

  test('list syntax, enum by number, escapes and adjacent strings, numbers of every form', () => {
    const m = parse(`
      name: "a\\"b\\n\\x41\\101" 'c'
      input: "data"
      input_dim: [1, 3, 0x10, 010]
      layer { name: "l" type: "Power" power_param { power: -1.5e-2 scale: .5 shift: 3.f } }
      layer { name: "r" type: "ReLU" relu_param { negative_slope: 1E3 engine: 2 } }
      layer { name: "t" type: "Threshold" threshold_param { threshold: -inf } }
    `);
    expect(m.name).toBe('a"b\nAAc');
    expect(m.input_dim).toEqual([1, 3, 16, 8]);
    const layers = m.layer as Record<string, any>[];
    expect(layers[0].power_param).toEqual({ power: -0.015, scale: 0.5, shift: 3 });
    expect(layers[1].relu_param).toEqual({ negative_slope: 1000, engine: 'CUDNN' });
    expect(layers[2].threshold_param.threshold).toBe(-Infinity);
  });

  test('unknown fields are tolerated at layer level (forks) but not inside known messages', () => {
    const m = parse(`layer { name: "p" type: "Permute" permute_param { order: [0, 2, 3, 1] } bottom: "x" top: "y" }`);
    expect((m.layer as any[])[0].bottom).toEqual(['x']);
    expectError(`layer {\n  name: "c"\n  convolution_param { kernal_size: 3 }\n}`, /unknown field "kernal_size" in ConvolutionParameter/, {
      line: 3,
      column: 23,
    });
    expectError(`nme: "x"`, /unknown field "nme" in NetParameter/, { line: 1, column: 1 });
  });

  test('syntax errors name file, line and column', () => {
    expectError('layer {\n  name: "x"\n', /missing '}'/, { line: 3 });
    expectError('layer {\n  name "x"\n}', /expected ':' after field "name"/, { line: 2, column: 8 });
    expectError('name: "abc', /unterminated string/, { line: 1, column: 7 });
    expectError('layer { name: "x" }\n}', /expected a field name, found '}'/, { line: 2, column: 1 });
    expectError('layer { pooling_param { pool: MEDIAN } }', /expects one of MAX, AVE, STOCHASTIC/, { line: 1, column: 31 });
    expectError('layer { convolution_param { num_output: -3 } }', /expects a non-negative integer/, { line: 1, column: 41 });
    expectError('layer { convolution_param { bias_term: maybe } }', /expects true or false/, { line: 1 });
    expectError('name: "a"\nname: "b"', /non-repeated field "name" of NetParameter is given more than once/, { line: 2 });
    expectError('input_dim: [1, 2', /expected ',' or ']'/, { line: 1 });
    expectError('name: @', /unexpected character '@'/, { line: 1, column: 7 });
  });

  test('number literals', () => {
    expect(parseFloatLiteral('1e-5')).toBe(1e-5);
    expect(parseFloatLiteral('-.5')).toBe(-0.5);
    expect(parseFloatLiteral('2.5f')).toBe(2.5);
    expect(parseFloatLiteral('nan')).toBeNaN();
    expect(parseFloatLiteral('1..2')).toBeUndefined();
    expect(parseIntLiteral('-0x1F')).toBe(-31);
    expect(parseIntLiteral('017')).toBe(15);
    expect(parseIntLiteral('1.5')).toBeUndefined();
  });
});
