// slat: build, dump, translate and draw second-level page-table images.
// A thin front end: argument parsing here, everything else in SLATImage.
import Foundation
import SLATImage

let arguments = Array(CommandLine.arguments.dropFirst())
exit(SlatCommand.run(arguments))
