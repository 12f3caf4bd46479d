"use strict";
exports.id = 782;
exports.ids = [782];
exports.modules = {

/***/ 77782:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   runPipeline: () => (/* binding */ runPipeline)
/* harmony export */ });
/* harmony import */ var _convert__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(5770);
/* harmony import */ var _compile__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(15379);
/* harmony import */ var _image__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(20094);
/* harmony import */ var _smoke__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(38697);




/**
 * The whole main job in one step: convert → compile → image → smoke → rollout, each stage's outputs wired into the
 * next (the ONNX into compile, the artifact and the parity result into image, the pushed digest into smoke and
 * rollout). Stops at the first stage that fails; the outputs and the summary hold every stage that ran.
 */
async function runPipeline(cfg, log) {
    const outputs = {};
    const summaries = [];
    const step = async (name, fn) => {
        const r = await log.group(`modelship ${name}`, fn);
        Object.assign(outputs, r.outputs);
        summaries.push(r.summary);
        return r;
    };
    const done = (r, stage) => ({
        outputs,
        summary: summaries.join('\n'),
        ok: r.ok,
        failure: r.ok ? undefined : `${stage}: ${r.failure}`,
    });
    const convert = await step('convert', () => (0,_convert__WEBPACK_IMPORTED_MODULE_0__/* .runConvert */ .B)(cfg.convert, log));
    if (!convert.ok)
        return done(convert, 'convert');
    const compile = await step('compile', () => (0,_compile__WEBPACK_IMPORTED_MODULE_1__/* .runCompile */ .Jz)({ ...cfg.compile, model: convert.outputs['onnx-path'] }, log));
    if (!compile.ok)
        return done(compile, 'compile');
    const image = await step('image', () => (0,_image__WEBPACK_IMPORTED_MODULE_2__/* .runImage */ .DG)({ ...cfg.image, model: compile.outputs['artifact-path'], parity: convert.outputs.parity }, log));
    if (!image.ok)
        return done(image, 'image');
    const smoke = await step('smoke', () => (0,_smoke__WEBPACK_IMPORTED_MODULE_3__/* .runSmoke */ .Lw)({ ...cfg.smoke, image: image.outputs.image }, log));
    if (!smoke.ok)
        return done(smoke, 'smoke');
    const { runRollout } = await Promise.all(/* import() */[__webpack_require__.e(482), __webpack_require__.e(139), __webpack_require__.e(57), __webpack_require__.e(158)]).then(__webpack_require__.bind(__webpack_require__, 46057));
    const rollout = await step('rollout', () => runRollout({ ...cfg.rollout, image: image.outputs.image }, log));
    return done(rollout, 'rollout');
}


/***/ })

};
;