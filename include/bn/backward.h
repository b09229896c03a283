/*
 * bn/backward.h: BatchNorm's gradients, and its eval map folded into one
 * affine map per channel.
 *
 * Backward gives what PyTorch's autograd gives through
 * torch.nn.functional.batch_norm: in train mode (and in eval mode for a
 * layer without running stats) the statistics are the batch's and the
 * gradient flows through them; in eval mode with running stats they are
 * constants. With xhat = (x - mean) * invstd, n values per channel:
 *
 *   grad_bias[c]   = sum(dy)
 *   grad_weight[c] = sum(dy * xhat)
 *   train: dx = weight * invstd / n * (n * dy - sum(dy) - xhat * sum(dy * xhat))
 *   eval:  dx = dy * weight * invstd
 *
 * Numerics: the statistics and the sums are two-pass in double (see
 * backward.c); each output is rounded to float32 once.
 */
#ifndef BN_BACKWARD_H
#define BN_BACKWARD_H

#include <stdbool.h>

#include "bn/batchnorm.h"
#include "bn/error.h"
#include "bn/tensor.h"

/*
 * The gradients of a layer's forward at x for the output gradient dy (x's
 * shape): grad_input into dx (x's shape; may be dy itself), and, when
 * grad_weight and grad_bias are not NULL, the per-channel parameter
 * gradients (num_features each; computed as if weight 1 and bias 0 when
 * the layer has no affine). train: batch statistics (layer.train());
 * otherwise running statistics (layer.eval()), or the batch's when the
 * layer does not track them. -EINVAL as bn_input_check does, or when dy or
 * dx do not have x's shape (BN_E_SHAPE_MISMATCH); -ERANGE when a result
 * would not be finite in float32; -ENOMEM. Changes nothing in state; the
 * outputs' contents are undefined on error.
 */
int bn_backward(const struct bn_config *cfg, const struct bn_state *state, bool train,
		const struct bn_tensor *x, const struct bn_tensor *dy, struct bn_tensor *dx,
		float *grad_weight, float *grad_bias, struct bn_error *err);

/*
 * Eval mode as one affine map per channel, y = x * scale + shift:
 * scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale
 * (weight 1 and bias 0 without affine), computed in double and rounded to
 * float32 once each: what torch.nn.utils.fusion.fuse_conv_bn_weights folds
 * into a convolution. -EINVAL (BN_E_INVALID_CONFIG) when the layer does
 * not track running stats, -ERANGE when a value is not finite in float32;
 * scale and shift written only on success.
 */
int bn_fold(const struct bn_config *cfg, const struct bn_state *state,
		float *scale, float *shift, struct bn_error *err);

#endif
