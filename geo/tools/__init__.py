"""Pure operations on frames: classes, overlay, exposure."""
