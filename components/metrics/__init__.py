"""Task metrics as plain functions of arrays and frames: detection mAP, segmentation IoU, trigger-word detection."""
