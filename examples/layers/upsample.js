// Your own Caffe layer for modelship (input `layers`): Upsample, as common Caffe forks define it (YOLOv3 ports,
// SegNet-style decoders), converted to ONNX Resize. Load it with
//   modelship convert --prototxt deploy.prototxt --caffemodel weights.caffemodel --layers examples/layers/upsample.js
// A handler is what src/convert/layers/*.ts are: the Caffe types it converts, and convert(ctx), which emits ONNX nodes
// (opset 13) producing ctx.out(i) for each top and returns the tops' shapes.
module.exports = ({ attr }) => ({
  // the parameter message, joined to Caffe's schema (package caffe, proto2); `params` adds the LayerParameter field
  proto: `
    message UpsampleParameter {
      optional uint32 scale = 1 [default = 2];
    }`,
  params: { upsample_param: 'UpsampleParameter' },
  handlers: [
    {
      types: ['Upsample'],
      convert(ctx) {
        ctx.arity(1, 1); // one bottom, one top
        const { scale } = ctx.params('upsample_param'); // with the default filled in
        if (!(scale >= 1)) ctx.fail(`scale must be ≥ 1, got ${scale}`);
        const [n, c] = ctx.x.shape; // n is the dynamic batch; H and W must be static (ctx.staticDim below)
        const scales = ctx.g.floatInit(`${ctx.layer.name}/scales`, [4], [1, 1, scale, scale]);
        // nearest neighbour that repeats each value scale × scale times: asymmetric coordinates, floor
        ctx.g.node(
          'Resize',
          [ctx.x.name, '', scales],
          [ctx.out()],
          {
            mode: attr.s('nearest'),
            coordinate_transformation_mode: attr.s('asymmetric'),
            nearest_mode: attr.s('floor'),
          },
          ctx.layer.name,
        );
        return [[n, c, ctx.staticDim(ctx.x.shape, 2) * scale, ctx.staticDim(ctx.x.shape, 3) * scale]];
      },
    },
  ],
});
