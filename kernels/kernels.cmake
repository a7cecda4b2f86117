# The nvcc build of the kernels: minivlm_kernels_cuda, every family of MINIVLM_KERNEL_FAMILIES
# (kernels/CMakeLists.txt) through its generated one-line .cu file, for sm_80 and sm_90. Compiler
# warnings are errors, and so are register spills (ptxas -warn-spills with -Werror). The g++ build
# of the same kernels against the emulator (minivlm_kernels_emu) and their tests are set up in
# kernels/CMakeLists.txt. Sanitizer trees (MINIVLM_KERNEL_TESTS_ONLY) build no CUDA code.
if(MINIVLM_CUDA AND NOT MINIVLM_KERNEL_TESTS_ONLY)
  enable_language(CUDA)
  # CMake 3.25 does not know nvcc's C++20 flag (the CUDA dialect follows CMAKE_CXX_STANDARD).
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  find_package(CUDAToolkit REQUIRED)
  # The library links the shared runtime (CUDA::cudart); so must every program that links these
  # kernels, or it would get cudart_static beside it.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared CACHE STRING "CUDA runtime: Shared, as CUDA::cudart")
  minivlm_kernel_shims(KERNEL_CUDA_SOURCES cuda cu)
  add_library(minivlm_kernels_cuda STATIC ${KERNEL_CUDA_SOURCES})
  set_target_properties(minivlm_kernels_cuda PROPERTIES CUDA_ARCHITECTURES "80;90")
  target_include_directories(minivlm_kernels_cuda PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(minivlm_kernels_cuda PRIVATE
                         $<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings
                         --ptxas-options=-warn-spills,-Werror>)
  target_link_libraries(minivlm_kernels_cuda PUBLIC CUDA::cudart)
endif()
